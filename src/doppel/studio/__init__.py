"""The local review-and-repair web app (`doppel studio`).

Layout: `backend.Backend` is the studio's one door into the workspace (swap it for the public API's workspace
facade in one file); `engine.Engine` runs it on one thread with a background render worker; `server` holds the
routes and `security` the gate in front of them; `problems` the timeline markers (a registry of detectors);
`static/` the page. Tools that edit a face add: Backend methods (or a module like `masks`, the mask editor's
server side), an `edit(...)` route in `server.build_app`, a panel in the inspector and an overlay in `draw()` of
`static/studio.js` (the mask editor's own page code is `static/masks.js`, loaded first).
"""
