"""Examples of checking your own implementation with the suite (see my_inhouse_loss.py)."""
