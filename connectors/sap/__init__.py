"""SAP S/4HANA over OData v2: the connector (API_BUSINESS_PARTNER, API_SALES_ORDER_SRV) and its simulator."""
