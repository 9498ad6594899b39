"""Average the weights of runs fine-tuned from one starting point into one model ("model soup").

    python scripts/average_weights.py runs/stage1 runs/stage2 runs/stage3 --out runs/soup

The folders must hold the same architecture (config) and are loaded strictly; the result is written like a trained
model (plain `UltraSamModel` weights, the first folder's processor, a card whose training record names the runs).
Library code: `ultrasam_hf.training.weight_averaging`.
"""

import argparse

from ultrasam_hf.inference.model_loading import load_model, load_processor
from ultrasam_hf.models.modeling_ultrasam import UltraSamModel
from ultrasam_hf.training.variants import export_model
from ultrasam_hf.training.weight_averaging import average_models


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models", nargs="+", help="model folders (two or more) of one architecture")
    parser.add_argument("--out", required=True, help="folder to write the averaged model to")
    args = parser.parse_args(argv)
    if len(args.models) < 2:
        parser.error("give two or more model folders")
    models = [load_model(folder, UltraSamModel) for folder in args.models]
    soup = average_models(models)
    processor = load_processor(args.models[0], soup.config)
    export_model(soup, args.out, processor, training_record={"weight_average_of": list(args.models)})
    print(f"wrote the mean of {len(models)} models to {args.out}")


if __name__ == "__main__":
    main()
