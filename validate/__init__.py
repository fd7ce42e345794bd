"""medicalrec.validate: retrain recommended models on MedMNIST and compare with the published figures.

datasets.py   the MedMNIST 2D table in the KB's vocabulary (canonical name, domain, modality)
data.py       .npz files through medmnist's classes into resident uint8 tensors; one-line errors
architectures.py / nets.py / classical.py   KB model names -> trainable torch / scikit-learn models
train.py      the MedMNIST recipe (one loop for CPU and CUDA), checkpoints and --resume
runner.py     model choice (--models or the recommender's --top N), runs, the report
writeback.py  runs into the KB (`validated` provenance), published MedMNIST v2 figures out of it
verify.py     the data file's md5 against medmnist's INFO, shapes and label ranges (issue 12)
sweep.py      `--datasets a,b --models m1,m2 --seeds N`: run specs, the resume ledger, the driver's writes
compare.py    every published figure the KB holds for a (dataset, model, size); difference, spread
multitask.py  the MedMNIST v2 multi-task challenge (shared backbone, harmonic mean of macro-F1)
tables.py     the progress bar and the sweep / multi-task tables
cli.py, multitask_cli.py   `medicalrec validate`, `medicalrec validate multitask`
(medicalrec/executor.py runs the runs in-process or on Ray.)
"""
