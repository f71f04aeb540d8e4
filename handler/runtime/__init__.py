"""How the app runs on Lambda and under uvicorn.

SnapStart's hooks and the streaming mode's app (`snapstart`), the extension
that writes ledger entries after the response (`after_response`), the buffered
handler's Mangum (`one_pass_mangum`), uvicorn's guarded HTTP protocol (`serving`). Imports the app and the wings below it.
"""
