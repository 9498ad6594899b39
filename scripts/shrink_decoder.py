"""Cut a model's mask decoder to its first LAYERS two-way blocks, the start of a cheaper decoder to train again.

    python scripts/shrink_decoder.py runs/nano --layers 1 --out runs/nano-1layer

The result is written like a trained model (its processor, a card whose training record names the source); it
answers badly until its decoder is trained again (`ultrasam_hf.training.decoder_depth`, docs/nano_distillation.md).
"""

import argparse

from ultrasam_hf.inference.model_loading import load_model, load_processor
from ultrasam_hf.models.modeling_ultrasam import UltraSamModel
from ultrasam_hf.training.decoder_depth import with_decoder_layers
from ultrasam_hf.training.variants import export_model


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", help="model folder (or Hub id) to cut")
    parser.add_argument("--layers", type=int, required=True, help="two-way blocks to keep (from the first)")
    parser.add_argument("--out", required=True, help="folder to write the cut model to")
    args = parser.parse_args(argv)
    model = load_model(args.model, UltraSamModel)
    try:
        shallow = with_decoder_layers(model, args.layers)
    except ValueError as error:
        parser.error(str(error))
    processor = load_processor(args.model, shallow.config)
    record = {"decoder_layers_of": str(args.model), "decoder_layers": args.layers}
    export_model(shallow, args.out, processor, training_record=record)
    depth = model.config.mask_decoder_config.num_hidden_layers
    print(f"wrote {args.model} with {args.layers} of its {depth} decoder layers to {args.out}")


if __name__ == "__main__":
    main()
