"""The `adyn` command: table drift checks, tails, exports and imports, backfills, a local server.

```
adyn [--endpoint-url URL] [--region R] [--table-template T] COMMAND ...
  tables check MODELS...     verify the live tables; exit 1 on any difference (CI drift check)
  tables create MODELS...    create the missing tables, verify the others
  tail MODEL                 stream changes as JSON lines (--from, --save)
  export MODEL               items as JSON lines (-o, --segments, --resume)
  import MODEL FILE          JSON lines into the table (--resume)
  backfill MODEL FUNCTION    transform every item (--segments, --rate, --resume, --segment)
  local                      run the embedded DynamoDB of adyn.testing (--port)
```

Models are named `package.module:Model` (or `package.module` for every concrete model in it),
functions `package.module:function`; the current folder is importable, as for `python -m`.
Exit codes: 0 done, 1 a finding (drift, items that failed), 2 an error (bad usage, a model
that does not import, a missing table, DynamoDB refusing), 3 a bug in adyn (with a traceback).

`import adyn` never imports this package: it is loaded by the command alone.
"""

from ._main import app, main

__all__ = ["app", "main"]
