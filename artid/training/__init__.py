"""Training the embedder on the database images (METHOD section 7, thesis sections 4.4 and 5.1).

One loop (:mod:`artid.training.trainer`) runs every method; a method
(:mod:`artid.training.methods`: contrastive, SimSiam, DNet) is a small object that
supplies its batches, its loss and its head. Pieces a method is built from:
losses (:mod:`.losses`), heads (:mod:`.heads`), hard-negative mining (:mod:`.mining`),
positive strategies (:mod:`.positives`), augmentations (:mod:`.augment`) and
datasets / samplers (:mod:`.data`).
"""
