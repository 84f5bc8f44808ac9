"""Contracts: what the operator has sold (or kept), on which terms, and their history."""
