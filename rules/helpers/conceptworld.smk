# Workflow helpers of the concept world's rules (rules/conceptworld.smk).


def concept_clip_inputs(wildcards):
    """The code the concept-world CLIP step runs, and the shipped model when it is used."""
    inputs = code(
        "conceptworld/train.py",
        "conceptworld/model.py",
        "conceptworld/generator.py",
        "conceptworld/world.py",
        "conceptworld/shipped.py",
    )
    if knob("conceptworld", "model", "shipped") == "shipped":
        inputs += code(
            "conceptworld/shipped/metadata.json", "conceptworld/shipped/weights.pt"
        )
    return inputs
