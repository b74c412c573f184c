import os

data_path = os.environ.get("FAKE_WEBUI_DATA", os.getcwd())
script_path = data_path
models_path = os.path.join(data_path, "models")
