"""The simulated org's metadata: objects, fields, relationships and record ids.

Field types and properties follow the describe vocabulary (``string``,
``picklist``, ``currency``, ``reference`` ...), so the describe resource and the
write validation read the same table.
"""
from __future__ import annotations

from dataclasses import dataclass, field

_ID_CHECK = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"  # ASCII order: sorts like numbers

STRING_TYPES = {"string", "textarea", "picklist", "phone", "url", "email", "id", "reference"}
NUMBER_TYPES = {"currency", "double", "percent", "int"}
SOAP_TYPES = {"id": "tns:ID", "reference": "tns:ID", "boolean": "xsd:boolean", "int": "xsd:int",
              "currency": "xsd:double", "double": "xsd:double", "percent": "xsd:double",
              "date": "xsd:date", "datetime": "xsd:dateTime"}


@dataclass(frozen=True)
class FieldDef:
    name: str
    type: str
    label: str = ""
    length: int = 0
    nillable: bool = True
    createable: bool = True
    updateable: bool = True
    external_id: bool = False
    unique: bool = False
    reference_to: str | None = None
    relationship_name: str | None = None
    calculated: bool = False
    auto_number: bool = False
    custom: bool = False
    picklist: tuple[str, ...] = ()
    precision: int = 0
    scale: int = 0


@dataclass(frozen=True)
class ChildRel:
    name: str            # relationship name used in subqueries, e.g. OrderItems
    child: str           # child object, e.g. OrderItem
    field: str           # lookup field on the child, e.g. OrderId
    cascade_delete: bool = False


@dataclass
class ObjectDef:
    name: str
    label: str
    key_prefix: str
    fields: dict[str, FieldDef]
    children: dict[str, ChildRel] = field(default_factory=dict)
    custom: bool = False
    name_field: str = "Name"

    def field(self, name: str) -> FieldDef | None:
        """The field called ``name`` (API names are case-insensitive)."""
        return self.fields.get(name) or self._lower.get(name.lower())

    def relationship(self, name: str) -> FieldDef | None:
        """The lookup field whose relationship name is ``name`` (Owner -> OwnerId)."""
        return self._rels.get(name.lower())

    def child(self, name: str) -> ChildRel | None:
        return next((c for k, c in self.children.items() if k.lower() == name.lower()), None)

    def __post_init__(self) -> None:
        self._lower = {k.lower(): f for k, f in self.fields.items()}
        self._rels = {f.relationship_name.lower(): f for f in self.fields.values() if f.relationship_name}


def _f(name: str, type_: str, **kw) -> FieldDef:
    length = kw.pop("length", 255 if type_ in STRING_TYPES - {"id", "reference", "picklist"} else 0)
    if type_ in {"id", "reference"}:
        length = 18
    if type_ == "currency":
        kw.setdefault("precision", 18)
        kw.setdefault("scale", 2)
    label = kw.pop("label", name.replace("__c", "").replace("_", " "))
    return FieldDef(name=name, type=type_, label=label, length=length, custom=name.endswith("__c"), **kw)


def _ro(name: str, type_: str, **kw) -> FieldDef:
    return _f(name, type_, createable=False, updateable=False, **kw)


def _ref(name: str, target: str, rel: str | None = None, **kw) -> FieldDef:
    rel = rel or (name[:-2] if name.endswith("Id") else name.replace("__c", "__r"))
    return _f(name, "reference", reference_to=target, relationship_name=rel, **kw)


def _system(owner: bool = True) -> list[FieldDef]:
    out = [_ro("Id", "id", nillable=False), _ro("IsDeleted", "boolean", nillable=False),
           _ro("CreatedDate", "datetime", nillable=False),
           _ref("CreatedById", "User", createable=False, updateable=False),
           _ro("LastModifiedDate", "datetime", nillable=False),
           _ref("LastModifiedById", "User", createable=False, updateable=False),
           _ro("SystemModstamp", "datetime", nillable=False)]
    if owner:
        out.append(_ref("OwnerId", "User", rel="Owner"))
    return out


def _obj(name: str, prefix: str, fields: list[FieldDef], children: list[ChildRel] = (),
         label: str | None = None, name_field: str = "Name") -> ObjectDef:
    return ObjectDef(name=name, label=label or name.replace("__c", ""), key_prefix=prefix,
                     fields={f.name: f for f in fields}, children={c.name: c for c in children},
                     custom=name.endswith("__c"), name_field=name_field)


CURRENCIES = ("CNY", "USD", "EUR", "GBP", "JPY", "HKD")
_PAY_TERMS = ("Net 30", "Net 45", "Net 60", "Due on Receipt", "Prepaid")
_ACCOUNT_TYPES = ("Customer - Direct", "Customer - Channel", "Partner", "Prospect", "Other")
_INDUSTRIES = ("Manufacturing", "Technology", "Electronics", "Retail", "Transportation", "Healthcare",
               "Chemicals", "Energy", "Food & Beverage", "Finance")
STAGES = {"Prospecting": 10, "Qualification": 10, "Needs Analysis": 20, "Value Proposition": 50,
          "Id. Decision Makers": 60, "Perception Analysis": 70, "Proposal/Price Quote": 75,
          "Negotiation/Review": 90, "Closed Won": 100, "Closed Lost": 0}
CONTRACT_STATUS_CODES = {"Draft": "Draft", "In Approval Process": "InApproval", "Activated": "Activated",
                         "Expired": "Expired", "Terminated": "Terminated"}


def _address(prefix: str) -> list[FieldDef]:
    return [_f(f"{prefix}Street", "textarea"), _f(f"{prefix}City", "string", length=40),
            _f(f"{prefix}State", "string", length=80), _f(f"{prefix}PostalCode", "string", length=20),
            _f(f"{prefix}Country", "string", length=80)]


def _currency() -> FieldDef:
    return _f("CurrencyIsoCode", "picklist", length=3, picklist=CURRENCIES, label="Currency ISO Code")


def _triad_id() -> FieldDef:
    return _f("Triad_Id__c", "string", length=64, external_id=True, unique=True, label="Triad Id")


OBJECTS: dict[str, ObjectDef] = {o.name: o for o in [
    _obj("User", "005", _system(owner=False) + [
        _f("Name", "string", length=121), _f("Username", "string", length=80),
        _f("Email", "email", length=128), _f("IsActive", "boolean")]),
    _obj("Product2", "01t", _system(owner=False) + [
        _f("Name", "string", nillable=False), _f("ProductCode", "string", length=255),
        _f("Description", "textarea"), _f("Family", "picklist", length=40), _f("IsActive", "boolean")],
        label="Product"),
    _obj("Account", "001", _system() + [
        _f("Name", "string", nillable=False), _f("AccountNumber", "string", length=40),
        _f("Type", "picklist", length=40, picklist=_ACCOUNT_TYPES),
        _f("Industry", "picklist", length=40, picklist=_INDUSTRIES), _f("Phone", "phone", length=40),
        _f("Website", "url"), *_address("Billing"), _f("Description", "textarea", length=32000),
        _f("TaxId__c", "string", length=30, label="Tax Id"), _f("Email__c", "email", length=80, label="Email"),
        _currency(), _f("CreditLimit__c", "currency", label="Credit Limit"),
        _f("PaymentTerms__c", "picklist", length=40, picklist=_PAY_TERMS, label="Payment Terms"),
        _f("Active__c", "boolean", label="Active"),
        _f("Tier__c", "picklist", length=40, picklist=("Platinum", "Gold", "Silver", "Bronze"), label="Tier"),
        _ro("IsPersonAccount", "boolean", nillable=False),
        _f("ERP_Id__c", "string", length=64, external_id=True, label="ERP Id"),  # external id, not unique
        _triad_id()],
        children=[ChildRel("Contacts", "Contact", "AccountId", True),
                  ChildRel("Opportunities", "Opportunity", "AccountId", True),
                  ChildRel("Orders", "Order", "AccountId"), ChildRel("Contracts", "Contract", "AccountId"),
                  ChildRel("Payments__r", "Payment__c", "Account__c")]),
    _obj("Contact", "003", _system() + [
        _f("FirstName", "string", length=40), _f("LastName", "string", length=80, nillable=False),
        _ro("Name", "string", length=121, calculated=True), _f("Title", "string", length=128),
        _f("Email", "email", length=80), _f("Phone", "phone", length=40),
        _f("MobilePhone", "phone", length=40), _ref("AccountId", "Account"), *_address("Mailing"),
        _triad_id()]),
    _obj("Opportunity", "006", _system() + [
        _f("Name", "string", length=120, nillable=False), _ref("AccountId", "Account"),
        _f("StageName", "picklist", length=40, nillable=False, picklist=tuple(STAGES)),
        _f("Amount", "currency"), _f("Probability", "percent", precision=3),
        _f("CloseDate", "date", nillable=False), _f("Type", "picklist", length=40),
        _f("LeadSource", "picklist", length=40), _ro("IsClosed", "boolean", calculated=True),
        _ro("IsWon", "boolean", calculated=True), _currency(),
        _f("Loss_Reason__c", "string", length=255, label="Loss Reason"), _triad_id()]),
    _obj("Contract", "800", _system() + [
        _ro("ContractNumber", "string", length=30, auto_number=True), _f("Name", "string", length=80),
        _ref("AccountId", "Account", nillable=False), _f("StartDate", "date"),
        _ro("EndDate", "date", calculated=True), _f("ContractTerm", "int", precision=4),
        _f("Status", "picklist", length=40, picklist=tuple(CONTRACT_STATUS_CODES)),
        _ro("StatusCode", "picklist", length=40, calculated=True, picklist=tuple(CONTRACT_STATUS_CODES.values())),
        _f("CompanySignedDate", "date"), _f("CustomerSignedDate", "date"),
        _f("Description", "textarea", length=32000), _currency(),
        _f("ContractValue__c", "currency", label="Contract Value"),
        _f("Approval_Id__c", "string", length=64, label="Approval Id"), _triad_id()],
        children=[ChildRel("Orders", "Order", "ContractId"),
                  ChildRel("Payments__r", "Payment__c", "Contract__c")],
        name_field="ContractNumber"),
    _obj("Order", "801", _system() + [
        _ro("OrderNumber", "string", length=30, auto_number=True), _ref("AccountId", "Account", nillable=False),
        _ref("ContractId", "Contract"), _f("EffectiveDate", "date", nillable=False), _f("EndDate", "date"),
        _f("Status", "picklist", length=40, nillable=False, picklist=("Draft", "Activated")),
        _f("Type", "picklist", length=40), _f("PoNumber", "string", length=80),
        _f("Description", "textarea", length=32000), _ro("TotalAmount", "currency", calculated=True),
        _currency(), _f("TaxAmount__c", "currency", label="Tax Amount"),
        _f("ShippingStatus__c", "picklist", length=40, label="Shipping Status",
           picklist=("Not Shipped", "Shipped", "Delivered")),
        _f("TrackingNumber__c", "string", length=64, label="Tracking Number"),
        _ref("OpportunityId", "Opportunity"),
        _f("Satisfaction__c", "double", precision=3, scale=0, label="Customer Satisfaction (0-10)"), _triad_id()],
        children=[ChildRel("OrderItems", "OrderItem", "OrderId", True),
                  ChildRel("Payments__r", "Payment__c", "Order__c")],
        name_field="OrderNumber"),
    _obj("OrderItem", "802", _system(owner=False) + [
        _ref("OrderId", "Order", nillable=False, updateable=False),
        _ro("OrderItemNumber", "string", length=30, auto_number=True), _ref("Product2Id", "Product2"),
        _f("Description", "string", length=255), _f("Quantity", "double", nillable=False, precision=18, scale=2),
        _f("UnitPrice", "currency", nillable=False), _ro("TotalPrice", "currency", calculated=True),
        _f("ServiceDate", "date")],
        label="Order Product", name_field="OrderItemNumber"),
    _obj("Payment__c", "a0X", _system() + [
        _ro("Name", "string", length=80, auto_number=True), _ref("Account__c", "Account"),
        _ref("Order__c", "Order"), _ref("Contract__c", "Contract"),
        _f("Amount__c", "currency", nillable=False), _currency(), _f("Paid_At__c", "datetime"),
        _f("Method__c", "picklist", length=40,
           picklist=("Bank Transfer", "Alipay", "WeChat Pay", "Credit Card", "Check", "SEPA")),
        _f("Status__c", "picklist", length=40, picklist=("Pending", "Received", "Reconciled", "Refunded")),
        _f("Reference__c", "string", length=100), _triad_id()],
        label="Payment"),
]}

PREFIXES = {o.key_prefix: o.name for o in OBJECTS.values()}


def lookup(name: str) -> ObjectDef | None:
    """The object called ``name``, case-insensitively."""
    if name in OBJECTS:
        return OBJECTS[name]
    return next((o for k, o in OBJECTS.items() if k.lower() == name.lower()), None)


def id_suffix(id15: str) -> str:
    """The 3-character case-safety suffix that turns a 15-character id into 18."""
    out = ""
    for chunk in (id15[0:5], id15[5:10], id15[10:15]):
        bits = sum(1 << i for i, c in enumerate(chunk) if "A" <= c <= "Z")
        out += _ID_CHECK[bits]
    return out


def make_id(prefix: str, number: int) -> str:
    """An 18-character id: key prefix, pod marker, a base-62 serial and the checksum suffix."""
    serial = ""
    for _ in range(5):
        number, r = divmod(number, 62)
        serial = _BASE62[r] + serial
    id15 = f"{prefix}5g00000{serial}"
    return id15 + id_suffix(id15)


def object_of_id(value: str) -> str | None:
    """The object an id belongs to (by key prefix), when the id is well formed."""
    if not isinstance(value, str) or len(value) not in (15, 18) or not value.isalnum():
        return None
    if len(value) == 18 and id_suffix(value[:15]) != value[15:]:
        return None
    return PREFIXES.get(value[:3])


def describe_field(f: FieldDef, obj: ObjectDef) -> dict:
    """One entry of a describe ``fields`` array."""
    numeric = f.type in NUMBER_TYPES
    return {
        "aggregatable": f.type != "textarea", "autoNumber": f.auto_number,
        "byteLength": f.length * 3 if f.length else 0, "calculated": f.calculated,
        "createable": f.createable, "custom": f.custom, "defaultValue": None,
        "defaultedOnCreate": f.name in {"Id", "IsDeleted", "CreatedDate", "OwnerId"} or f.auto_number,
        "digits": f.precision if f.type == "int" else 0, "externalId": f.external_id,
        "filterable": f.type != "textarea" or f.length <= 255, "groupable": not numeric,
        "idLookup": f.name == "Id" or f.external_id, "label": f.label or f.name,
        "length": f.length, "name": f.name, "nameField": f.name == obj.name_field,
        "nillable": f.nillable, "picklistValues": [
            {"active": True, "defaultValue": False, "label": v, "validFor": None, "value": v}
            for v in f.picklist],
        "precision": f.precision if f.type != "int" else 0, "referenceTo": [f.reference_to] if f.reference_to else [],
        "relationshipName": f.relationship_name, "restrictedPicklist": False,
        "scale": f.scale, "soapType": SOAP_TYPES.get(f.type, "xsd:string"), "sortable": f.type != "textarea",
        "type": f.type, "unique": f.unique, "updateable": f.updateable,
    }


def urls(obj: ObjectDef, version: str) -> dict:
    base = f"/services/data/v{version}/sobjects/{obj.name}"
    return {"sobject": base, "describe": f"{base}/describe", "rowTemplate": f"{base}/{{ID}}"}


def describe_global_entry(obj: ObjectDef, version: str) -> dict:
    return {"name": obj.name, "label": obj.label, "labelPlural": obj.label + "s", "keyPrefix": obj.key_prefix,
            "custom": obj.custom, "createable": True, "updateable": True, "deletable": True,
            "queryable": True, "retrieveable": True, "searchable": True, "replicateable": True,
            "urls": urls(obj, version)}


def describe(obj: ObjectDef, version: str) -> dict:
    """The ``sobjects/<Obj>/describe`` body."""
    out = describe_global_entry(obj, version)
    out["fields"] = [describe_field(f, obj) for f in obj.fields.values()]
    out["childRelationships"] = [
        {"cascadeDelete": c.cascade_delete, "childSObject": c.child, "deprecatedAndHidden": False,
         "field": c.field, "relationshipName": c.name, "restrictedDelete": False}
        for c in obj.children.values()]
    out["recordTypeInfos"] = []
    return out
