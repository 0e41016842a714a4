"""(being written)"""
ADAPTERS = []
