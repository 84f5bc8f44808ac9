"""Billing: price books, rating, SLA credits, invoices, revenue recognition and reports."""
