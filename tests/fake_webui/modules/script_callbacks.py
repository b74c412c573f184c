callbacks = {"ui_settings": [], "before_ui": [], "app_started": [], "ui_tabs": []}


def clear_callbacks():
    for value in callbacks.values():
        value.clear()


def on_ui_settings(fn):
    callbacks["ui_settings"].append(fn)


def on_before_ui(fn):
    callbacks["before_ui"].append(fn)


def on_app_started(fn):
    callbacks["app_started"].append(fn)


def on_ui_tabs(fn):
    callbacks["ui_tabs"].append(fn)


def before_ui_callback():
    for fn in callbacks["before_ui"]:
        fn()


def app_started_callback(demo, app):
    for fn in callbacks["app_started"]:
        fn(demo, app)
