__all__ = []
VALUE = 1
