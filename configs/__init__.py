"""The papers' configs (`python -m jaxvfi.main --config=configs/<paper>.py`); installed as the package
`jaxvfi.configs`."""
