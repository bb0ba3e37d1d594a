"""The ``$metadata`` document of a simulated service: EDMX 1.0, DataServiceVersion 2.0, sap: annotations.

Built from :mod:`connectors.sap.schema` with the structure SAP Gateway uses
(entity types ``<Set>Type``, associations with both ends and association sets in
the default entity container), so SAP's own pyodata client can load it.
"""
from __future__ import annotations

from xml.sax.saxutils import quoteattr

from connectors.sap.schema import ENTITY_SETS, SERVICES, EntitySet, Nav, Prop

EDMX_NS = "http://schemas.microsoft.com/ado/2007/06/edmx"
M_NS = "http://schemas.microsoft.com/ado/2007/08/dataservices/metadata"
SAP_NS = "http://www.sap.com/Protocols/SAPData"
EDM_NS = "http://schemas.microsoft.com/ado/2008/09/edm"


def _attrs(**values: object) -> str:
    parts = []
    for name, value in values.items():
        if value is None:
            continue
        if isinstance(value, bool):
            value = "true" if value else "false"
        parts.append(f"{name.replace('__', ':').replace('_', '-')}={quoteattr(str(value))}")
    return " ".join(parts)


def _property(p: Prop) -> str:
    attrs = _attrs(Name=p.name, Type=p.type, Nullable=None if not p.key else False,
                   MaxLength=p.max_length, Precision=p.precision, Scale=p.scale,
                   sap__display_format=p.display_format, sap__label=p.label,
                   sap__creatable=None if p.creatable else False,
                   sap__updatable=None if p.updatable else False,
                   sap__filterable=None if p.filterable else False)
    return f"    <Property {attrs}/>"


def _assoc_name(es: EntitySet, nav: Nav) -> str:
    return f"assoc_{es.name}_{nav.name}"


def _entity_type(es: EntitySet) -> list[str]:
    lines = [f'   <EntityType {_attrs(Name=es.type_name, sap__label=es.label, sap__content_version="1")}>',
             "    <Key>", *(f"     <PropertyRef Name={quoteattr(p.name)}/>" for p in es.keys), "    </Key>"]
    lines += [_property(p) for p in es.props]
    for nav in es.navs:
        assoc = _assoc_name(es, nav)
        lines.append(f"    <NavigationProperty {_attrs(Name=nav.name, Relationship=f'{es.service}.{assoc}')} "
                     f"{_attrs(FromRole=f'FromRole_{assoc}', ToRole=f'ToRole_{assoc}')}/>")
    lines.append("   </EntityType>")
    return lines


def _association(es: EntitySet, nav: Nav) -> list[str]:
    assoc = _assoc_name(es, nav)
    target = ENTITY_SETS[nav.target]
    lines = [f'   <Association {_attrs(Name=assoc, sap__content_version="1")}>',
             f"    <End {_attrs(Type=f'{es.service}.{es.type_name}', Multiplicity='1', Role=f'FromRole_{assoc}')}/>",
             f"    <End {_attrs(Type=f'{es.service}.{target.type_name}', Multiplicity='*' if nav.many else '0..1')}"
             f" {_attrs(Role=f'ToRole_{assoc}')}/>"]
    principal = [src for src, _ in nav.pairs]
    if principal == [p.name for p in es.keys]:
        # a referential constraint is only valid when it names the principal's whole key
        lines += ["    <ReferentialConstraint>", f"     <Principal Role={quoteattr(f'FromRole_{assoc}')}>",
                  *(f"      <PropertyRef Name={quoteattr(src)}/>" for src, _ in nav.pairs), "     </Principal>",
                  f"     <Dependent Role={quoteattr(f'ToRole_{assoc}')}>",
                  *(f"      <PropertyRef Name={quoteattr(dep)}/>" for _, dep in nav.pairs), "     </Dependent>",
                  "    </ReferentialConstraint>"]
    lines.append("   </Association>")
    return lines


def render_edmx(service: str) -> str:
    """The EDMX text of ``service`` (API_BUSINESS_PARTNER or API_SALES_ORDER_SRV)."""
    sets = SERVICES[service]
    lines = ['<?xml version="1.0" encoding="utf-8"?>',
             f'<edmx:Edmx Version="1.0" xmlns:edmx="{EDMX_NS}" xmlns:m="{M_NS}" xmlns:sap="{SAP_NS}">',
             ' <edmx:DataServices m:DataServiceVersion="2.0">',
             f'  <Schema Namespace="{service}" xml:lang="en" sap:schema-version="1" xmlns="{EDM_NS}">']
    for es in sets:
        lines += _entity_type(es)
    for es in sets:
        for nav in es.navs:
            lines += _association(es, nav)
    container = f"{service}_Entities"
    lines.append(f'   <EntityContainer Name="{container}" m:IsDefaultEntityContainer="true" '
                 'sap:supported-formats="json">')
    for es in sets:
        lines.append(f"    <EntitySet {_attrs(Name=es.name, EntityType=f'{service}.{es.type_name}')} "
                     f"{_attrs(sap__creatable=es.creatable, sap__updatable=es.updatable)} "
                     f"{_attrs(sap__deletable=es.deletable, sap__content_version='1')}/>")
    for es in sets:
        for nav in es.navs:
            assoc = _assoc_name(es, nav)
            lines += [f"    <AssociationSet {_attrs(Name=f'{assoc}_set', Association=f'{service}.{assoc}')} "
                      f'sap:creatable="false" sap:updatable="false" sap:deletable="false" sap:content-version="1">',
                      f"     <End {_attrs(EntitySet=es.name, Role=f'FromRole_{assoc}')}/>",
                      f"     <End {_attrs(EntitySet=nav.target, Role=f'ToRole_{assoc}')}/>",
                      "    </AssociationSet>"]
    lines += ["   </EntityContainer>", "  </Schema>", " </edmx:DataServices>", "</edmx:Edmx>", ""]
    return "\n".join(lines)
