"""Events and trips: the library grouped by when and where photos were taken (`grouping.py`), with
bilingual titles (`titles.py`); stored in the catalog (catalog/events.py) and kept in step by `sync.py`."""
