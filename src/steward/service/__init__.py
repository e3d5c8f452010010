"""The service core both services stand on: keys and authorisation, rate and request limits, the audit log
and its writer, the input guards, metrics, one error type, and the app with the shared routes
(``steward.service.app``). ``steward.serve`` and ``steward.gateway`` add their routes to it and share
nothing else."""
