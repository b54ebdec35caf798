"""Distributed analysis: Celery tasks over Redis, `smartalbum worker`, and the coordinator that stores
results. Workers never open the catalog; the `index` process that sent the tasks is the one writer.
"""
