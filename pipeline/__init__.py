"""The composition root: wires the stages (ingest, detect, alerts, sink) into one process.

``riverguard demo`` runs the whole pipeline on the in-memory bus in simulated time;
``riverguard run all`` runs every service against the real stack. No stage imports this package.
"""
