"""Kingdee K3Cloud (金蝶云星空) WebAPI: connector, transport client and simulator (PROTOCOLS section 3)."""
