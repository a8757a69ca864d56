# Set-up and everyday commands. Python 3.11 or newer must be on PATH.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: run test install clean

# Run the web process (gunicorn, port 8000) and the RQ worker with the embedded defaults.
run: $(VENV)/.installed
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/honcho start -f Procfile -p 8000

# Run the test suite; extra pytest arguments go in ARGS, e.g. make test ARGS="-k voice".
test: $(VENV)/.installed
	$(BIN)/python -m pytest $(ARGS)

install: $(VENV)/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

clean:
	rm -rf $(VENV) instance
