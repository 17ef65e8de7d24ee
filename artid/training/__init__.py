"""Training the embedder on the database images (METHOD section 7, thesis sections 4.4 and 5.1).

One loop (:mod:`artid.training.trainer`) runs every method; a method
(:mod:`artid.training.methods`: contrastive, SimSiam, DNet, each registered by name in
:mod:`artid.training.registry`) is a small object that supplies its batches, its loss and its
head. A run's settings are typed sections (:mod:`.sections`: data, model, optimisation and
schedule) plus the method's own (:mod:`.settings`); the loop takes the optimisation section as
it is, and a resume under other settings is refused naming each change (:mod:`.runstate`).
Pieces a method is built from:
losses (:mod:`.losses`), heads (:mod:`.heads`), hard-negative mining (:mod:`.mining`),
positive strategies (:mod:`.positives`), augmentations (:mod:`.augment`) and
datasets / samplers (:mod:`.data`).
"""
