"""medicalrec.validate: retrain recommended models on MedMNIST and compare with the published figures.

datasets.py   the MedMNIST 2D table in the KB's vocabulary (canonical name, domain, modality)
data.py       .npz files through medmnist's classes into resident uint8 tensors; one-line errors
architectures.py / nets.py / classical.py   KB model names -> trainable torch / scikit-learn models
train.py      the MedMNIST recipe (one loop for CPU and CUDA), checkpoints and --resume
runner.py     model choice (--models or the recommender's --top N), runs, the report
writeback.py  runs into the KB (`validated` provenance), published MedMNIST v2 figures out of it
cli.py        `medicalrec validate`
"""
