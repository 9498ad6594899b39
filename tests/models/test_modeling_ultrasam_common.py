"""transformers' common model and configuration tests (`ModelTesterMixin`, `ConfigTester`) on `UltraSamModel`, the way
transformers runs them on `SamModel` (`tests/models/sam/test_modeling_sam.py` there): the same tiny geometry, the
same class attributes, the same tests skipped (with SAM's reasons) and SAM's own overrides, adapted where UltraSam
differs (refinement passes, TinyViT). Three variants: the ViT without refinement (exactly SAM), the ViT with one
refinement pass (the paper's model) and the TinyViT `lite` layout. `transformers_testing/` holds the vendored suite.
SAM's skips of tests that the vendored mixin no longer has (`test_save_load_fast_init_*`) are left out.
"""

import math
import tempfile
import unittest

import pytest
import torch
import transformers
from torch import nn
from transformers.testing_utils import require_torch, torch_device
from transformers_testing import VENDORED_FROM

# The vendored files import helpers of their own transformers version's `testing_utils`: another version fails at
# import or runs tests written for a different library.
if transformers.__version__ != VENDORED_FROM:
    pytest.skip(
        f"transformers' common tests are vendored from transformers {VENDORED_FROM}, but {transformers.__version__} "
        "is installed (`make install` installs the pinned version)",
        allow_module_level=True,
    )

from transformers_testing.test_configuration_common import ConfigTester  # noqa: E402
from transformers_testing.test_modeling_common import ModelTesterMixin, floats_tensor  # noqa: E402

from ultrasam_hf import UltraSamConfig, UltraSamModel  # noqa: E402

# SAM's test geometry: 24 px images, patch 2 -> 12x12 embeddings; windows of 14 (one padded window per image).
VIT = {
    "image_size": 24,
    "patch_size": 2,
    "hidden_size": 36,
    "intermediate_size": 72,
    "projection_dim": 62,
    "output_channels": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "window_size": 14,
    "global_attn_indexes": [2, 5, 8, 11],
    "num_pos_feats": 16,
}
# LiteMedSAM's TinyViT layout, shrunk: 32 px, total stride 4 -> 8x8 embeddings; stages at strides 1, 2, 4, 4.
TINY_VIT = {
    "encoder_type": "tiny_vit",
    "image_size": 32,
    "patch_size": 4,
    "hidden_size": 40,
    "output_channels": 32,
    "num_pos_feats": 16,
    "tiny_vit_embed_dims": [16, 24, 32, 40],
    "tiny_vit_depths": [1, 1, 2, 1],
    "tiny_vit_num_heads": [1, 2, 2, 4],
    "tiny_vit_window_sizes": [4, 4, 4, 4],
}
MASK_DECODER = {
    "hidden_size": 32,
    "hidden_act": "relu",
    "mlp_dim": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "iou_head_hidden_dim": 32,
}


class UltraSamModelTester:
    def __init__(self, parent, vision=VIT, num_mask_refinements=0, batch_size=2):
        self.parent = parent
        self.vision = dict(vision)
        self.num_mask_refinements = num_mask_refinements
        self.batch_size = batch_size
        self.image_size = vision["image_size"]
        self.embedding_size = vision["image_size"] // vision["patch_size"]
        self.output_channels = vision["output_channels"]
        self.is_tiny_vit = vision.get("encoder_type") == "tiny_vit"
        self.mask_decoder_layers = MASK_DECODER["num_hidden_layers"]

    def get_config(self):
        return UltraSamConfig(
            vision_config=self.vision,
            prompt_encoder_config={
                "hidden_size": 32,
                "image_size": self.image_size,
                "patch_size": self.vision["patch_size"],
                "mask_input_channels": 4,
            },
            mask_decoder_config=MASK_DECODER,
            num_mask_refinements=self.num_mask_refinements,
        )

    def prepare_config_and_inputs(self):
        pixel_values = floats_tensor([self.batch_size, 3, self.image_size, self.image_size])
        return self.get_config(), pixel_values

    def prepare_config_and_inputs_for_common(self):
        config, pixel_values = self.prepare_config_and_inputs()
        return config, {"pixel_values": pixel_values}

    def num_vision_layers(self, config):
        """Hidden states after the patch embedding: one per ViT block or TinyViT stage."""
        vision = config.vision_config
        return len(vision.tiny_vit_depths) if self.is_tiny_vit else vision.num_hidden_layers

    def num_vision_attentions(self, config):
        vision = config.vision_config
        return sum(vision.tiny_vit_depths[1:]) if self.is_tiny_vit else vision.num_hidden_layers

    def vision_attention_shape(self, config):
        """(batch * windows, heads, tokens, tokens) of the first attention layer."""
        vision = config.vision_config
        if self.is_tiny_vit:  # stage 1 runs at stride 2
            window, side = vision.tiny_vit_window_sizes[1], vision.image_size // 2
            windows = math.ceil(side / window) ** 2
            return [self.batch_size * windows, vision.tiny_vit_num_heads[1], window * window, window * window]
        windows = math.ceil(self.embedding_size / vision.window_size) ** 2
        tokens = vision.window_size**2
        return [self.batch_size * windows * vision.num_attention_heads, tokens, tokens][-3:]

    def create_and_check_model(self, config, pixel_values):
        model = UltraSamModel(config=config).to(torch_device).eval()
        with torch.no_grad():
            result = model(pixel_values)
        self.parent.assertEqual(result.iou_scores.shape, (self.batch_size, 1, 3))
        self.parent.assertEqual(result.pred_masks.shape[:3], (self.batch_size, 1, 3))
        self.parent.assertEqual(result.image_embeddings.shape[1:], (self.output_channels, *[self.embedding_size] * 2))
        if self.num_mask_refinements:
            self.parent.assertEqual(result.first_pass_pred_masks.shape[:3], (self.batch_size, 1, 1))

    def create_and_check_get_image_features(self, config, pixel_values):
        model = UltraSamModel(config=config).to(torch_device).eval()
        with torch.no_grad():
            result = model.get_image_embeddings(pixel_values)
        self.parent.assertEqual(result[0].shape, (self.output_channels, self.embedding_size, self.embedding_size))

    def create_and_check_get_image_hidden_states(self, config, pixel_values):
        model = UltraSamModel(config=config).to(torch_device).eval()
        for return_dict in (True, False):
            with torch.no_grad():
                result = model.vision_encoder(pixel_values, output_hidden_states=True, return_dict=return_dict)
            self.parent.assertEqual(len(result[1]), self.num_vision_layers(config) + 1)
            if self.is_tiny_vit:  # the patch embedding, channels-first
                expected = (
                    self.batch_size,
                    config.vision_config.tiny_vit_embed_dims[0],
                    self.image_size,
                    self.image_size,
                )
            else:
                expected = (
                    self.batch_size,
                    self.embedding_size,
                    self.embedding_size,
                    config.vision_config.hidden_size,
                )
            self.parent.assertEqual(result[1][0].shape, expected)


@require_torch
class UltraSamModelTest(ModelTesterMixin, unittest.TestCase):
    """SAM's test class (`SamModelTest`) on `UltraSamModel` without refinement; the subclasses below change the
    variant only. Skips and overrides are SAM's, with SAM's reasons."""

    all_model_classes = (UltraSamModel,)
    fx_compatible = False
    test_pruning = False
    test_resize_embeddings = False
    test_head_masking = False
    test_torchscript = False
    _is_composite = True
    vision = VIT
    num_mask_refinements = 0

    def setUp(self):
        self.model_tester = UltraSamModelTester(
            self, vision=self.vision, num_mask_refinements=self.num_mask_refinements
        )
        self.config_tester = ConfigTester(
            self, config_class=UltraSamConfig, has_text_modality=False, common_properties=["initializer_range"]
        )

    def test_config(self):
        self.config_tester.run_common_tests()

    @unittest.skip(reason="SAM's vision encoder does not use inputs_embeds")
    def test_inputs_embeds(self):
        pass

    def test_model_get_set_embeddings(self):
        config, _ = self.model_tester.prepare_config_and_inputs_for_common()
        for model_class in self.all_model_classes:
            model = model_class(config)
            self.assertIsInstance(model.get_input_embeddings(), nn.Module)
            output_embeddings = model.get_output_embeddings()
            self.assertTrue(output_embeddings is None or isinstance(output_embeddings, nn.Linear))

    def test_model(self):
        self.model_tester.create_and_check_model(*self.model_tester.prepare_config_and_inputs())

    def test_get_image_features(self):
        self.model_tester.create_and_check_get_image_features(*self.model_tester.prepare_config_and_inputs())

    def test_image_hidden_states(self):
        self.model_tester.create_and_check_get_image_hidden_states(*self.model_tester.prepare_config_and_inputs())

    def test_attention_outputs(self):
        """SAM's, with UltraSam's counts: the mask decoder's attentions of every decoder pass, TinyViT's per stage.
        Eager attention, as the common test forces (SDPA returns no weights)."""
        config, inputs_dict = self.model_tester.prepare_config_and_inputs_for_common()
        config._attn_implementation = "eager"
        tester = self.model_tester
        decoder_attentions = (1 + tester.num_mask_refinements) * tester.mask_decoder_layers
        expected_decoder_shape = [tester.batch_size, 1, tester.embedding_size**2, 32]
        for model_class in self.all_model_classes:
            inputs_dict["output_attentions"] = True
            inputs_dict["output_hidden_states"] = False
            config.return_dict = True
            model = model_class._from_config(config, attn_implementation="eager").to(torch_device).eval()
            with torch.no_grad():
                outputs = model(**self._prepare_for_class(inputs_dict, model_class))
            self.assertEqual(len(outputs.vision_attentions), tester.num_vision_attentions(config))
            self.assertEqual(len(outputs.mask_decoder_attentions), decoder_attentions)

            # output_attentions from the configuration: the top-level flag does not reach the vision encoder's own
            # configuration, in SamModel as here, so set both
            del inputs_dict["output_attentions"]
            config.output_attentions = True
            self._set_subconfig_attributes(config, "output_attentions", True)
            model = model_class._from_config(config, attn_implementation="eager").to(torch_device).eval()
            with torch.no_grad():
                outputs = model(**self._prepare_for_class(inputs_dict, model_class))
            self.assertEqual(len(outputs.vision_attentions), tester.num_vision_attentions(config))
            self.assertEqual(len(outputs.mask_decoder_attentions), decoder_attentions)
            expected_vision_shape = tester.vision_attention_shape(config)
            self.assertListEqual(
                list(outputs.vision_attentions[0].shape[-len(expected_vision_shape) :]), expected_vision_shape
            )
            self.assertListEqual(list(outputs.mask_decoder_attentions[0].shape[-4:]), expected_decoder_shape)

    @unittest.skip(reason="SamModel does not support training")
    def test_training(self):
        pass

    @unittest.skip(reason="SamModel does not support training")
    def test_training_gradient_checkpointing(self):
        pass

    @unittest.skip(
        reason="This architecure seem to not compute gradients properly when using GC, check: https://github.com/huggingface/transformers/pull/27124"
    )
    def test_training_gradient_checkpointing_use_reentrant_true(self):  # `..._use_reentrant` before transformers 5
        pass

    @unittest.skip(
        reason="This architecure seem to not compute gradients properly when using GC, check: https://github.com/huggingface/transformers/pull/27124"
    )
    def test_training_gradient_checkpointing_use_reentrant_false(self):
        pass

    @unittest.skip(reason="SamModel does not support training")
    def test_retain_grad_hidden_states_attentions(self):
        pass

    @unittest.skip(reason="Hidden_states is tested in create_and_check_model tests")
    def test_hidden_states_output(self):
        pass

    def test_sdpa_can_compile_dynamic(self):
        self.skipTest(reason="SAM model can't be compiled dynamic yet")

    def test_sdpa_can_dispatch_composite_models(self):
        """SAM's: the requested attention implementation reaches the vision encoder and the mask decoder."""
        for model_class in self.all_model_classes:
            config, _ = self.model_tester.prepare_config_and_inputs_for_common()
            model = model_class(config)
            with tempfile.TemporaryDirectory() as folder:
                model.save_pretrained(folder)
                model_sdpa = model_class.from_pretrained(folder, attn_implementation="sdpa").eval().to(torch_device)
                model_eager = model_class.from_pretrained(folder, attn_implementation="eager").eval().to(torch_device)
            attn_impl = "sdpa" if model._supports_sdpa else "eager"
            self.assertEqual(model_sdpa.config._attn_implementation, "sdpa")
            self.assertEqual(model_sdpa.vision_encoder.config._attn_implementation, attn_impl)
            self.assertEqual(model_sdpa.mask_decoder.config._attn_implementation, attn_impl)
            self.assertEqual(model_eager.config._attn_implementation, "eager")
            self.assertEqual(model_eager.vision_encoder.config._attn_implementation, "eager")
            self.assertEqual(model_eager.mask_decoder.config._attn_implementation, "eager")
            if attn_impl == "sdpa" and not self.model_tester.is_tiny_vit:  # TinyViT has no SDPA variant
                self.assertTrue(any("SdpaAttention" in type(m).__name__ for m in model_sdpa.modules()))
            self.assertFalse(any("SdpaAttention" in type(m).__name__ for m in model_eager.modules()))


class UltraSamRefinementModelTest(UltraSamModelTest):
    """The paper's model: one cascaded refinement pass."""

    num_mask_refinements = 1


class UltraSamLiteModelTest(UltraSamModelTest):
    """The `lite` layout: LiteMedSAM's TinyViT encoder."""

    vision = TINY_VIT
