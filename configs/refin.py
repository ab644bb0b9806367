r"""ReFIn (Dutta & Mittal): Super-SloMo with a residual refinement module. Paper: ../shared/papers/000_*.txt.

Run (the paper's recipe on the embedded data unless --config.data.name/dir point at Vimeo-90K):
  python -m jaxvfi.main --config=configs/refin.py --workdir=/tmp/refin
Variants (comma-separated in the arg string):
  configs/refin.py:runlocal            the README quickstart: small crops and few steps, minutes on 2 CPU cores
  configs/refin.py:backbone=unet       interpolation and refinement backbones (unet | unetpp | gridnet3 | gridnet4)
  configs/refin.py:refinement=false    Table 2 ablation: Super-SloMo framework without the refinement module

The recipe, line by line (§4, "Training and Evaluation details" and "Loss functions"):
  * "initial learning rate 1e-4 for both Interpolation and Refinement modules ... gradually decrease the learning
    rate to 1e-6": optimizer.schedule is a cosine decay from 1e-4 to 1e-6 over the run (the shape is not stated;
    cosine is our choice).
  * "Adam optimizer with beta1 = 0.9, beta2 = 0.999": optimizer.b1, b2.
  * "batch size 4": batch_size = 4.  "t is set to 0.5 for both training and evaluation": data.t = 0.5.
  * Eq. (5) "lambda_r = 204, lambda_p = 0.005, lambda_w = 102 and lambda_s = 1": loss.weights. The perceptual term
    (Johnson et al.) uses VGG-19 relu4_4 (loss.perceptual_layer), and needs loss.vgg_weights; without them it is
    dropped and the log and eval JSON say so.
  * Flow module: the flow UNet of Super-SloMo (model.flow = "unet"), trained at the interpolation module's rate.
  * No augmentation and no cropping is mentioned: data augmentation switches are off and the frames are used whole
    (data.crop_size = 0). The number of epochs is not stated: num_epochs = 30 is our choice.
"""
from ml_collections import config_dict

from jaxvfi import config_lib


def get_config(arg=None):
  a = config_lib.parse_arg(arg, backbone="unet", refinement=True, runlocal=False)
  c = config_lib.base_config()
  c.batch_size = 4
  c.num_epochs = 30.0
  c.eval_every_steps = 2000
  c.checkpoint_every_steps = 2000
  c.log_every_steps = 100

  c.data.t_sampling = "fixed"
  c.data.t = 0.5
  c.data.crop_size = 0
  c.data.random_flip_h = False
  c.data.random_flip_v = False
  c.data.temporal_swap = False

  c.model.name = "refin"
  c.model.variant = "refin"
  c.model.flow = "unet"
  c.model.flow_weights = config_dict.placeholder(str)
  c.model.interpolation_backbone = a.backbone
  c.model.refinement_backbone = a.backbone
  c.model.use_refinement = a.refinement
  c.model.warp_padding = "zeros"
  c.model.warp_impl = "auto"

  c.loss.weights = dict(l1=204.0, perceptual=0.005, warp=102.0, smoothness=1.0)
  c.loss.perceptual_layer = "relu4_4"
  c.loss.vgg_weights = config_dict.placeholder(str)

  c.optimizer.schedule = dict(name="cosine", init_value=1e-4, end_value=1e-6)

  if a.runlocal:
    c.num_epochs = 0.0
    c.num_train_steps = 150
    c.eval_every_steps = 75
    c.checkpoint_every_steps = 50
    c.log_every_steps = 25
    c.data.crop_size = 64
    c.data.random_flip_h = True
    c.data.temporal_swap = True
    c.optimizer.schedule = dict(name="cosine", init_value=3e-4, end_value=1e-5)
  return c
