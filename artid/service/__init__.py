"""The recognition service: index bundles, the recognizer, the HTTP API and the web page.

- :mod:`artid.service.collection`: read a collection (plain folder or Met-format root); its
  metadata file in :mod:`~artid.service.metadata`.
- :mod:`artid.service.bundle`: the index bundle (atomic generations, locked changes); its layout in
  :mod:`~artid.service.bundle_layout`, its contents in :mod:`~artid.service.bundle_contents`;
  the reader leases that keep what a running server reads from its garbage collection in
  :mod:`~artid.service.readers`.
- :mod:`artid.service.calibrate`: the acceptance threshold for a target rate of accepted
  distractors.
- :mod:`artid.service.builder`: describe a collection as ``artid extract`` does
  (:mod:`~artid.service.describing`), fit the pipeline as ``artid evaluate`` does and calibrate
  its thresholds (:mod:`~artid.service.fitting`), with the models and attributes run the bundle
  keeps (:mod:`~artid.service.bundle_models`) and the re-ranking stage's local features
  (:mod:`~artid.service.reranking`); :mod:`~artid.service.editing` adds and removes artworks and
  :mod:`~artid.service.recalibration` calibrates the thresholds again on the validation photos
  the bundle keeps.
- :mod:`artid.service.capacity`: the service's default workers and queue.
- :mod:`artid.service.recognizer`: the bundle's models and pipeline: photo -> top matches,
  accepted or not; what it loads in :mod:`~artid.service.serving`, how it reads a photo in
  :mod:`~artid.service.photos`.
- :mod:`artid.service.upload`: checking and decoding uploaded photos.
- :mod:`artid.service.api`: the FastAPI app (``create_app``) and its web page (``static/``);
  :mod:`~artid.service.following` serves each new generation of the bundle without a restart.
"""
