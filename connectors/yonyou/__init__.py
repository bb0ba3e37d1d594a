"""Yonyou YonBIP / YonSuite OpenAPI: connector, transport client and simulator (PROTOCOLS section 4)."""
