"""Examples shown in the API's OpenAPI page (/docs)."""

GRID_EXAMPLE = {
    "sweep": {
        "summary": "Two checkpoints, one LoHa at three weights, scored",
        "value": {
            "checkpoints": ["v1-5-pruned-emaonly", "anything-v5"],
            "adapters": ["style_loha"],
            "weights": [0.5, 0.8, 1.0],
            "prompts": ["[trigger] le_style, a castle", "[alter] le_style, a cat on a sofa"],
            "seeds": {"count": 4, "first": 1000},
            "trigger": {"le_style": "watercolor painting"},
            "references": ["outputs/refs/watercolor"],
            "score": True,
            "run_name": "watercolor-loha",
            "base": {"negative_prompt": "lowres", "steps": 20, "width": 512, "height": 512, "cfg_scale": 7},
        },
    },
    "epochs": {
        "summary": "Every other saved epoch of a training run (GET /training-runs), at three weights",
        "value": {
            "training_run": {"name": "watercolor", "every": 2},
            "weights": [0.6, 0.8, 1.0],
            "prompts": ["[trigger] le_style, a castle", "[alter] le_style, a cat on a sofa", "[style] a cat"],
            "seeds": {"count": 8, "first": 1000},
            "trigger": {"le_style": "watercolor painting"},
            "references": ["outputs/refs/watercolor"],
            "score": True,
            "run_name": "watercolor-epochs",
        },
    },
}
EVALUATE_EXAMPLE = {
    "run": {"summary": "Score a finished grid run", "value": {"run_id": "20261123-101500-watercolor-loha"}},
    "folder": {"summary": "Score a folder of WebUI images", "value": {"folder": "outputs/txt2img-images/2026-11-23"}},
}
