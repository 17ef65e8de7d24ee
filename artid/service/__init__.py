"""The recognition service: index bundles, the recognizer, the HTTP API and the web page.

- :mod:`artid.service.collection`: read a collection (plain folder or Met-format root) and its
  metadata.
- :mod:`artid.service.bundle`: the index bundle (atomic generations, locked changes); its layout in
  :mod:`~artid.service.bundle_layout`, its contents in :mod:`~artid.service.bundle_contents`.
- :mod:`artid.service.calibrate`: the acceptance threshold for a target rate of accepted
  distractors.
- :mod:`artid.service.builder`: describe a collection with a model and build a bundle
  (:mod:`~artid.service.describing`); :mod:`~artid.service.editing` adds and removes artworks.
- :mod:`artid.service.capacity`: the service's default workers and queue.
- :mod:`artid.service.recognizer`: one model + index: photo -> top matches, accepted or not.
- :mod:`artid.service.upload`: checking and decoding uploaded photos.
- :mod:`artid.service.api`: the FastAPI app (``create_app``) and its web page (``static/``).
"""
