"""The simulated services' entity model: entity sets, properties, navigation properties.

One catalogue serves the ``$metadata`` document, value coding, ``$filter``
type checks, expansion and write validation. Property names follow SAP's
API_BUSINESS_PARTNER and API_SALES_ORDER_SRV (a subset; PROTOCOLS.md section 2.5).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

BP_SERVICE = "API_BUSINESS_PARTNER"
SO_SERVICE = "API_SALES_ORDER_SRV"

_TYPES = {"S": "Edm.String", "D": "Edm.DateTime", "DT": "Edm.DateTime", "DTO": "Edm.DateTimeOffset",
          "T": "Edm.Time", "B": "Edm.Boolean", "G": "Edm.Guid", "N": "Edm.Decimal"}


@dataclass(frozen=True)
class Prop:
    """One property of an entity type, with the sap: annotations the EDMX declares."""

    name: str
    type: str                      # Edm type name
    label: str
    max_length: int | None = None
    precision: int | None = None
    scale: int | None = None
    key: bool = False
    creatable: bool = True
    updatable: bool = True
    filterable: bool = True
    display_format: str | None = None   # "Date", "UpperCase"


@dataclass(frozen=True)
class Nav:
    """A navigation property: ``pairs`` are (principal property, dependent property)."""

    name: str
    target: str
    many: bool
    pairs: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class EntitySet:
    """An entity set and its entity type (``<name>Type``)."""

    name: str
    service: str
    label: str
    props: tuple[Prop, ...]
    navs: tuple[Nav, ...] = ()
    creatable: bool = True
    updatable: bool = True
    deletable: bool = False
    stamp: str | None = None       # "date_time" (BP) or "offset" (sales order): how writes stamp it
    parent: tuple[str, tuple[tuple[str, str], ...]] | None = None  # (set, (child prop, parent prop)...)
    by_name: dict[str, Prop] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        self.by_name.update({p.name: p for p in self.props})

    @property
    def type_name(self) -> str:
        return f"{self.name}Type"

    @cached_property
    def keys(self) -> tuple[Prop, ...]:
        return tuple(p for p in self.props if p.key)

    def nav(self, name: str) -> Nav | None:
        return next((n for n in self.navs if n.name == name), None)


def _p(name: str, code: str, label: str, flags: str = "") -> Prop:
    """A property from a short code: S10 (string, length 10), D (date), DT, DTO, T, B, G, N16.3."""
    head = code.rstrip("0123456789.")
    size = code[len(head):]
    edm = _TYPES[head]
    kw: dict = {}
    if head == "S" and size:
        kw["max_length"] = int(size)
    elif head == "N":
        precision, _, scale = size.partition(".")
        kw.update(precision=int(precision), scale=int(scale or 0))
    elif head in ("D", "DT", "T"):
        kw["precision"] = 0
    elif head == "DTO":
        kw["precision"] = 7
    if head == "D":
        kw["display_format"] = "Date"
    opts = set(flags.split(",")) if flags else set()
    if "upper" in opts:
        kw["display_format"] = "UpperCase"
    return Prop(name, edm, label, key="key" in opts, creatable="ro" not in opts,
                updatable=not ({"ro", "noupd", "key"} & opts), filterable="nofilter" not in opts, **kw)


BUSINESS_PARTNER = EntitySet("A_BusinessPartner", BP_SERVICE, "Business Partner", (
    _p("BusinessPartner", "S10", "Business Partner", "key,upper"),
    _p("Customer", "S10", "Customer", "ro,upper"),
    _p("Supplier", "S10", "Supplier", "ro,upper"),
    _p("AcademicTitle", "S4", "Academic Title 1"),
    _p("AuthorizationGroup", "S4", "Authorization Group"),
    _p("BusinessPartnerCategory", "S1", "BP Category", "noupd"),
    _p("BusinessPartnerFullName", "S81", "Full Name", "ro"),
    _p("BusinessPartnerGrouping", "S4", "Grouping", "noupd"),
    _p("BusinessPartnerName", "S81", "Business Partner Name", "ro"),
    _p("BusinessPartnerUUID", "G", "BP GUID", "ro"),
    _p("CorrespondenceLanguage", "S2", "Correspondence Lang."),
    _p("CreatedByUser", "S12", "Created By", "ro"),
    _p("CreationDate", "D", "Created On", "ro"),
    _p("CreationTime", "T", "Created At", "ro"),
    _p("FirstName", "S40", "First Name"),
    _p("FormOfAddress", "S4", "Form of Address"),
    _p("Industry", "S10", "Industry Sector"),
    _p("IsNaturalPerson", "S1", "Natural Person"),
    _p("Language", "S2", "Language"),
    _p("LastChangeDate", "D", "Changed On", "ro"),
    _p("LastChangeTime", "T", "Changed At", "ro"),
    _p("LastChangedByUser", "S12", "Changed By", "ro"),
    _p("LastName", "S40", "Last Name"),
    _p("LegalForm", "S2", "Legal Form"),
    _p("OrganizationBPName1", "S40", "Name 1"),
    _p("OrganizationBPName2", "S40", "Name 2"),
    _p("OrganizationBPName3", "S40", "Name 3"),
    _p("OrganizationBPName4", "S40", "Name 4"),
    _p("OrganizationFoundationDate", "D", "Date founded"),
    _p("SearchTerm1", "S20", "Search Term 1", "upper"),
    _p("SearchTerm2", "S20", "Search Term 2", "upper"),
    _p("BusinessPartnerIsBlocked", "B", "Central Block"),
    _p("BusinessPartnerType", "S4", "Business Partner Type"),
    _p("ETag", "S26", "Time Stamp", "ro,nofilter"),
    _p("NameCountry", "S3", "Name Country"),
    _p("IsMarkedForArchiving", "B", "Archiving Flag"),
    _p("BusinessPartnerIDByExtSystem", "S20", "External BP Number"),
    _p("TradingPartner", "S6", "Trading Partner No."),
), navs=(
    Nav("to_BusinessPartnerAddress", "A_BusinessPartnerAddress", True, (("BusinessPartner", "BusinessPartner"),)),
    Nav("to_BusinessPartnerRole", "A_BusinessPartnerRole", True, (("BusinessPartner", "BusinessPartner"),)),
    Nav("to_BusinessPartnerTaxNumber", "A_BusinessPartnerTaxNumber", True,
        (("BusinessPartner", "BusinessPartner"),)),
    Nav("to_Customer", "A_Customer", False, (("BusinessPartner", "Customer"),)),
), deletable=False, stamp="date_time")

BP_ADDRESS = EntitySet("A_BusinessPartnerAddress", BP_SERVICE, "BP Address", (
    _p("BusinessPartner", "S10", "Business Partner", "key,upper"),
    _p("AddressID", "S10", "Address Number", "key,upper"),
    _p("ValidityStartDate", "DTO", "Valid From"),
    _p("ValidityEndDate", "DTO", "Valid To"),
    _p("AddressUUID", "G", "UUID", "ro"),
    _p("AddressTimeZone", "S6", "Time Zone", "upper"),
    _p("CareOfName", "S40", "c/o"),
    _p("CityName", "S40", "City"),
    _p("Country", "S3", "Country/Region Key", "upper"),
    _p("District", "S40", "District"),
    _p("FullName", "S80", "Full Name"),
    _p("HouseNumber", "S10", "House Number"),
    _p("Language", "S2", "Language Key"),
    _p("POBox", "S10", "PO Box"),
    _p("PostalCode", "S10", "Postal Code"),
    _p("Region", "S3", "Region", "upper"),
    _p("StreetName", "S60", "Street"),
    _p("StreetPrefixName", "S40", "Street 2"),
    _p("TaxJurisdiction", "S15", "Tax Jurisdiction", "upper"),
), navs=(
    Nav("to_EmailAddress", "A_AddressEmailAddress", True, (("AddressID", "AddressID"),)),
    Nav("to_PhoneNumber", "A_AddressPhoneNumber", True, (("AddressID", "AddressID"),)),
), deletable=True, parent=("A_BusinessPartner", (("BusinessPartner", "BusinessPartner"),)))

# what a partner is for (FLCU00 customer in financial accounting, FLCU01 customer in sales ...):
# a partner with customer data but without the customer roles is no customer in S/4HANA
BP_ROLE = EntitySet("A_BusinessPartnerRole", BP_SERVICE, "BP Role", (
    _p("BusinessPartner", "S10", "Business Partner", "key,upper"),
    _p("BusinessPartnerRole", "S6", "BP Role", "key,upper"),
    _p("ValidFrom", "DTO", "Validity Start"),
    _p("ValidTo", "DTO", "Validity End"),
    _p("AuthorizationGroup", "S4", "Authorization Group"),
), deletable=True, parent=("A_BusinessPartner", (("BusinessPartner", "BusinessPartner"),)))

ADDRESS_EMAIL = EntitySet("A_AddressEmailAddress", BP_SERVICE, "Email Address", (
    _p("AddressID", "S10", "Address Number", "key,upper"),
    _p("Person", "S10", "Person Number", "key,upper"),
    _p("OrdinalNumber", "S3", "Sequence Number", "key"),
    _p("IsDefaultEmailAddress", "B", "Standard addr."),
    _p("EmailAddress", "S241", "Email Address"),
    _p("SearchEmailAddress", "S20", "E-Mail Address", "ro,upper"),
    _p("AddressCommunicationRemarkText", "S50", "Notes"),
), deletable=True, parent=("A_BusinessPartnerAddress", (("AddressID", "AddressID"),)))

ADDRESS_PHONE = EntitySet("A_AddressPhoneNumber", BP_SERVICE, "Phone Number", (
    _p("AddressID", "S10", "Address Number", "key,upper"),
    _p("Person", "S10", "Person Number", "key,upper"),
    _p("OrdinalNumber", "S3", "Sequence Number", "key"),
    _p("DestinationLocationCountry", "S3", "Country/Region", "upper"),
    _p("IsDefaultPhoneNumber", "B", "Standard No."),
    _p("PhoneNumber", "S30", "Telephone"),
    _p("PhoneNumberExtension", "S10", "Extension"),
    _p("InternationalPhoneNumber", "S30", "Telephone Number", "ro"),
    _p("PhoneNumberType", "S1", "Mobile Phone"),
    _p("AddressCommunicationRemarkText", "S50", "Notes"),
), deletable=True, parent=("A_BusinessPartnerAddress", (("AddressID", "AddressID"),)))

BP_TAX_NUMBER = EntitySet("A_BusinessPartnerTaxNumber", BP_SERVICE, "Tax Number", (
    _p("BusinessPartner", "S10", "Business Partner", "key,upper"),
    _p("BPTaxType", "S4", "Tax Number Category", "key,upper"),
    _p("BPTaxNumber", "S20", "Tax Number"),
    _p("BPTaxLongNumber", "S60", "Tax Number"),
    _p("AuthorizationGroup", "S4", "Authorization Group"),
), deletable=True, parent=("A_BusinessPartner", (("BusinessPartner", "BusinessPartner"),)))

CUSTOMER = EntitySet("A_Customer", BP_SERVICE, "Customer", (
    _p("Customer", "S10", "Customer", "key,upper"),
    _p("AuthorizationGroup", "S4", "Authorization Group"),
    _p("BillingIsBlockedForCustomer", "S2", "Billing Block"),
    _p("CreatedByUser", "S12", "Created By", "ro"),
    _p("CreationDate", "D", "Created On", "ro"),
    _p("CustomerAccountGroup", "S4", "Account Group", "noupd"),
    _p("CustomerClassification", "S2", "Classification"),
    _p("CustomerFullName", "S220", "Customer Full Name", "ro"),
    _p("CustomerName", "S80", "Name of Customer", "ro"),
    _p("DeliveryIsBlocked", "S2", "Delivery Block"),
    _p("NFPartnerIsNaturalPerson", "S1", "Natural Person"),
    _p("OrderIsBlockedForCustomer", "S2", "Order Block"),
    _p("PostingIsBlocked", "B", "Posting Block"),
    _p("Supplier", "S10", "Supplier"),
    _p("CustomerCorporateGroup", "S10", "Group Key"),
    _p("FiscalAddress", "S10", "Fiscal Address"),
    _p("Industry", "S4", "Industry"),
    _p("IndustryCode1", "S10", "Industry Code 1"),
    _p("InternationalLocationNumber1", "S7", "Int. Location No. 1"),
    _p("NielsenRegion", "S2", "Nielsen ID"),
    _p("ResponsibleType", "S2", "Responsible Type"),
    _p("TaxNumber1", "S16", "Tax Number 1"),
    _p("TaxNumber2", "S11", "Tax Number 2"),
    _p("TaxNumberType", "S2", "Tax Number Type"),
    _p("VATRegistration", "S20", "VAT Registration No."),
    _p("DeletionIndicator", "B", "Central Deletion Flag"),
), navs=(
    Nav("to_CustomerSalesArea", "A_CustomerSalesArea", True, (("Customer", "Customer"),)),
), creatable=False, deletable=False, parent=("A_BusinessPartner", (("Customer", "BusinessPartner"),)))

CUSTOMER_SALES_AREA = EntitySet("A_CustomerSalesArea", BP_SERVICE, "Customer Sales Area", (
    _p("Customer", "S10", "Customer", "key,upper"),
    _p("SalesOrganization", "S4", "Sales Organization", "key,upper"),
    _p("DistributionChannel", "S2", "Distribution Channel", "key,upper"),
    _p("Division", "S2", "Division", "key,upper"),
    _p("AccountByCustomer", "S12", "Account at customer"),
    _p("BillingIsBlockedForCustomer", "S2", "Billing Block"),
    _p("CompleteDeliveryIsDefined", "B", "Complete Delivery"),
    _p("Currency", "S5", "Currency", "upper"),
    _p("CustomerABCClassification", "S2", "ABC Classification"),
    _p("CustomerGroup", "S2", "Customer Group"),
    _p("CustomerPaymentTerms", "S4", "Terms of Payment"),
    _p("CustomerPriceGroup", "S2", "Price Group"),
    _p("DeliveryPriority", "S2", "Delivery Priority"),
    _p("IncotermsClassification", "S3", "Incoterms"),
    _p("IncotermsLocation1", "S70", "Incoterms Location 1"),
    _p("SalesGroup", "S3", "Sales Group"),
    _p("SalesOffice", "S4", "Sales Office"),
    _p("ShippingCondition", "S2", "Shipping Conditions"),
    _p("OrderIsBlockedForCustomer", "S2", "Order Block"),
    _p("DeletionIndicator", "B", "Deletion Flag"),
), deletable=True, parent=("A_Customer", (("Customer", "Customer"),)))

SALES_ORDER = EntitySet("A_SalesOrder", SO_SERVICE, "Sales Order Header", (
    _p("SalesOrder", "S10", "Sales Order", "key,upper"),
    _p("SalesOrderType", "S4", "Sales Document Type", "noupd,upper"),
    _p("SalesOrganization", "S4", "Sales Organization", "noupd,upper"),
    _p("DistributionChannel", "S2", "Distribution Channel", "noupd"),
    _p("OrganizationDivision", "S2", "Division", "noupd"),
    _p("SalesGroup", "S3", "Sales Group"),
    _p("SalesOffice", "S4", "Sales Office"),
    _p("SalesDistrict", "S6", "Sales District"),
    _p("SoldToParty", "S10", "Sold-to Party", "noupd,upper"),
    _p("CreationDate", "D", "Created On", "ro"),
    _p("CreatedByUser", "S12", "Created By", "ro"),
    _p("LastChangeDate", "D", "Changed On", "ro"),
    _p("SenderBusinessSystemName", "S60", "Sender System"),
    _p("ExternalDocumentID", "S40", "External Document ID"),
    _p("LastChangeDateTime", "DTO", "Last Changed On", "ro"),
    _p("ExternalDocLastChangeDateTime", "DTO", "Ext. Doc. Last Changed"),
    _p("PurchaseOrderByCustomer", "S35", "Customer Reference"),
    _p("CustomerPurchaseOrderType", "S4", "Purchase Order Type"),
    _p("CustomerPurchaseOrderDate", "D", "Customer Reference Date"),
    _p("SalesOrderDate", "D", "Document Date"),
    _p("TotalNetAmount", "N16.3", "Net Value", "ro"),
    _p("OverallDeliveryStatus", "S1", "Delivery Status", "ro"),
    _p("TotalBlockStatus", "S1", "Overall Block Status", "ro"),
    _p("OverallOrdReltdBillgStatus", "S1", "Order-Rel. Billing Status", "ro"),
    _p("OverallSDDocReferenceStatus", "S1", "Reference Status", "ro"),
    _p("TransactionCurrency", "S5", "Document Currency", "upper"),
    _p("SDDocumentReason", "S3", "Order Reason"),
    _p("PricingDate", "D", "Pricing Date"),
    _p("RequestedDeliveryDate", "D", "Requested Delivery Date"),
    _p("ShippingCondition", "S2", "Shipping Conditions"),
    _p("CompleteDeliveryIsDefined", "B", "Complete Delivery"),
    _p("ShippingType", "S2", "Shipping Type"),
    _p("HeaderBillingBlockReason", "S2", "Billing Block"),
    _p("DeliveryBlockReason", "S2", "Delivery Block"),
    _p("IncotermsClassification", "S3", "Incoterms"),
    _p("IncotermsLocation1", "S70", "Incoterms Location 1"),
    _p("CustomerPaymentTerms", "S4", "Terms of Payment"),
    _p("PaymentMethod", "S1", "Payment Method"),
    _p("AssignmentReference", "S18", "Assignment"),
    _p("CustomerGroup", "S2", "Customer Group"),
    _p("SalesDocApprovalStatus", "S1", "Approval Status", "ro"),
    _p("OverallSDProcessStatus", "S1", "Overall Status", "ro"),
    _p("TotalCreditCheckStatus", "S1", "Overall Credit Status", "ro"),
    # a key-user extensibility field (YY1_*_SDH on the sales document header): the carrier's tracking number
    _p("YY1_TrackingNumber_SDH", "S35", "Tracking Number"),
    _p("OverallTotalDeliveryStatus", "S1", "Total Delivery Status", "ro"),
    _p("OverallSDDocumentRejectionSts", "S1", "Rejection Status", "ro"),
), navs=(
    Nav("to_Item", "A_SalesOrderItem", True, (("SalesOrder", "SalesOrder"),)),
), deletable=True, stamp="offset")

SALES_ORDER_ITEM = EntitySet("A_SalesOrderItem", SO_SERVICE, "Sales Order Item", (
    _p("SalesOrder", "S10", "Sales Order", "key,upper"),
    _p("SalesOrderItem", "S6", "Item", "key"),
    _p("HigherLevelItem", "S6", "Higher-Level Item"),
    _p("SalesOrderItemCategory", "S4", "Item Category", "upper"),
    _p("SalesOrderItemText", "S40", "Item Description"),
    _p("PurchaseOrderByCustomer", "S35", "Customer Reference"),
    _p("Material", "S40", "Material", "noupd,upper"),
    _p("MaterialByCustomer", "S35", "Customer Material"),
    _p("PricingDate", "D", "Pricing Date"),
    _p("RequestedQuantity", "N15.3", "Requested Quantity"),
    _p("RequestedQuantityUnit", "S3", "Sales Unit"),
    _p("TransactionCurrency", "S5", "Document Currency", "ro"),
    _p("NetAmount", "N16.3", "Net Value", "ro"),
    _p("NetPriceAmount", "N16.3", "Net Price"),
    _p("NetPriceQuantity", "N5", "Pricing Unit"),
    _p("NetPriceQuantityUnit", "S3", "Unit of Measure"),
    _p("TaxAmount", "N13.3", "Tax Amount", "ro"),
    _p("MaterialGroup", "S9", "Material Group"),
    _p("ProductionPlant", "S4", "Plant"),
    _p("StorageLocation", "S4", "Storage Location"),
    _p("ShippingPoint", "S4", "Shipping Point"),
    _p("DeliveryPriority", "S2", "Delivery Priority"),
    _p("SDProcessStatus", "S1", "Overall Status", "ro"),
    _p("DeliveryStatus", "S1", "Delivery Status", "ro"),
    _p("OrderRelatedBillingStatus", "S1", "Billing Status", "ro"),
    _p("SalesDocumentRjcnReason", "S2", "Reason for Rejection"),
), deletable=True, parent=("A_SalesOrder", (("SalesOrder", "SalesOrder"),)))

ENTITY_SETS: dict[str, EntitySet] = {s.name: s for s in (
    BUSINESS_PARTNER, BP_ADDRESS, BP_ROLE, ADDRESS_EMAIL, ADDRESS_PHONE, BP_TAX_NUMBER, CUSTOMER,
    CUSTOMER_SALES_AREA, SALES_ORDER, SALES_ORDER_ITEM)}

SERVICES: dict[str, tuple[EntitySet, ...]] = {
    svc: tuple(s for s in ENTITY_SETS.values() if s.service == svc) for svc in (BP_SERVICE, SO_SERVICE)}
