"""The audit log (docs/api.md#audit-log): who changed what through the API, when, and the
fields before and after. `recorder` writes entries inside the change's transaction;
`router` and `service` read them back."""
