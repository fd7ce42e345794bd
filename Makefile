VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed

.PHONY: setup demo test bench clean-venv

setup: $(STAMP)

# medmnist is installed without its dependencies because it requires an unpinned torchvision
# (a multi-GB CUDA build); medicalrec never imports torchvision.
$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -c constraints.txt torch==2.13.0
	$(PIP) install -q --no-deps "medmnist>=3.0,<4"
	$(PIP) install -q -c constraints.txt fire scikit-image tqdm Pillow
	$(PIP) install -q -c constraints.txt -e ".[dev,ray]"
	touch $(STAMP)

demo: setup
	$(VENV)/bin/medicalrec demo

test: setup
	$(PY) -m pytest -q -rs

bench: setup
	$(PY) bench/extract_speed.py
	$(PY) bench/extract_quality.py
	$(PY) bench/feature_resolver.py
	$(PY) bench/recommend_speed.py
	$(PY) bench/validate_speed.py

clean-venv:
	rm -rf $(VENV)
