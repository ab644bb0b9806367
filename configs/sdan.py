r"""SDAN (Mei, Ye & Huang, "SDAN: Squared Deformable Alignment Network for Learning Misaligned Optical Zoom"): 4x
optical zoom on SR-RAW.

Run:
  python -m jaxvfi.main --config=configs/sdan.py --workdir=/tmp/sdan --config.data.dir=/data/SR-RAW     (RAW input)
  python -m jaxvfi.main --config=configs/sdan.py:input=rgb --workdir=/tmp/sdan_rgb --config.data.dir=/data/SR-RAW
  python -m jaxvfi.main --config=configs/sdan.py:table2=cp --workdir=/tmp/sdan_cp ...      (a Table 2 row)
  python -m jaxvfi.main --config=configs/sdan.py:runlocal --workdir=/tmp/sdan_local         (embedded data, CPU)
  python -m jaxvfi.main --config=configs/sdan.py --mode=summary --workdir=/tmp/sdan_summary    (1,671,818 params)
  python -m jaxvfi.zoom --workdir=/tmp/sdan_rgb --input photo.png --output photo_x4.png        (RGB-input models)
SR-RAW's train.zip / test.zip unpacked into data.dir (`jaxvfi.datasets.sr_raw`; building needs rawpy).

Arguments (`configs/sdan.py:a=b,...`):
  input=raw|rgb          the released 1-channel Bayer mosaic (the code's default n_colors = 1) or the camera RGB.
  table2=dcn|sdcn|cl|cp|flip   a row of Table 2 (flip, "++ Flip Augment", is SDAN itself; see jaxvfi.models.sdan).
  same_layer             Sec. 3.2's "same convolutional layer" read as the head conv itself (RGB input only).
  runlocal               the embedded synthetic zoom pairs, a 32-feature 8-block SDAN, 600 steps (measured below).

The recipe, line by line (paper Sec. 3-4 and the authors' code, MKFMIKU/SDAN `models/dfs.py`, `main.py`):
  * Network, Sec. 3 / `DFSNetwork` + `Sq_DFS_Attention`: 64 features, 16 residual blocks, x4 pixel shuffle, squared
    offsets with CPA (K = 8) and the four flips of Y': 1,671,818 parameters (RAW), 1,672,970 (RGB).
  * Data, Sec. 4.1: "randomly cropped image pairs in 64x64 pixels from the low-resolution RAW images (128x128 in RGB)
    and corresponding magnified patches in 512x512": data.augmentation = "sdan" (crop_size 64 on the packed grid);
    h and v flips of input and target together (the authors' loader). The RAW is the file's own black/white levels
    normalised (the loader hard-codes Sony's 512 / 16383) and unpacked by the network to the 1-channel mosaic.
    SR-RAW 4x pairs: targets 00001-00003 with inputs 00005-00007 for training, 00002/00006 for testing.
  * Loss, Eq. (6): masked L1 on X' against Y' (bicubic downscale of Y) plus masked L1 on X~ against Y, after the
    code's border crops (32 px at HR, 8 at LR): loss.weights align = sr = 1, loss.border = 32. The code uses a
    Charbonnier penalty sqrt(d^2 + 1e-12) (loss.penalty = "charbonnier"); the paper writes |.| (the default).
  * Optimiser, `configure_optimizers`: Adam, betas (0.9, 0.99); lr 2e-4 (the paper states none; `main.py`'s flag
    default is 1e-4 and the authors' training command is not published: 2e-4 is the value of the project's notes).
  * Schedule, `configure_optimizers`: CosineAnnealingWarmRestarts(T_0 = 20, T_mult = 2, eta_min = 1e-5), stepped
    once per epoch (Lightning's default interval): optimizer.schedule cosine_warm_restarts with per_epoch.
  * "300 epochs" (Sec. 4.1): num_epochs = 300, the end of the 4th cycle (20 + 40 + 80 + 160). `main.py` sets
    max_epochs = 800; the paper's 300 is the default.
  * Batch: `main.py`'s --batch_size default 8. Under the authors' DDP on 8 GPUs that is 8 per GPU (64 in all);
    batch_size = 8 here, --config.batch_size=64 for the other reading.
  * Evaluation, Sec. 4.2: PSNR and SSIM on the Y channel (ITU-R BT.601) with a 32-pixel border crop (the code's
    `sr[:, :, 32:-32, 32:-32]`), beside the bicubic x4 baseline; inference with {X, X}. LPIPS (AlexNet, on the
    cropped RGB images) once its weights are given: `python -m jaxvfi.weights convert --arch=lpips_alex ...` and
    --config.lpips_weights=lpips_alex.npz (without them the eval's notes say it was not computed). Table 1 (test
    split): RAW 30.53 dB / 0.870 / 0.133, RGB 29.05 / 0.858 / 0.149, bicubic 20.15 / 0.615 / 0.344.
  * --config.data.builder_config=aligned applies the dataset's own tform.txt alignment and wb.txt white balance as
    the authors' loader does (`jaxvfi.datasets.sr_raw`); the default keeps the pairs as shot.
No SR-RAW run has been made in this repository (no data or GPU time): the commands above are what to run.

runlocal trains on `jaxvfi_synthetic_zoom`: pairs of two rendered cameras with a known offset (up to 3 input pixels)
between input and target, the short camera softer, darker and warmer than the long one (its RAW is the linear light
on an RGGB grid); validation pairs are aligned. Measured on the shared 2-core machine (16 validation pairs, 64x64 in,
256x256 out, Y channel, 32 px crop):
  configs/sdan.py:runlocal (RAW)        16 min                         Y-PSNR 23.63 dB, SSIM 0.559
  configs/sdan.py:runlocal,input=rgb    25 min (busier machine)        Y-PSNR 23.70 dB, SSIM 0.584
  bicubic x4                                                           Y-PSNR 23.01 dB, SSIM 0.749
The network beats bicubic in PSNR by learning the short camera's colours; its SSIM stays below bicubic's after 600
steps (its detail is not yet learnt: a smoke run, not a reproduction). colabs/sdan.ipynb trains runlocal and shows
one pair's input, reference, aligned X', mask, output and target.
"""
from ml_collections import config_dict

from jaxvfi import config_lib
from jaxvfi.models import sdan

TABLE2 = {"dcn": (20.91, 0.752, 0.281), "sdcn": (26.41, 0.765, 0.282), "cl": (25.73, 0.764, 0.277),
          "cp": (27.25, 0.791, 0.191), "flip": (30.53, 0.870, 0.133)}
"""Paper 004's Table 2: (PSNR dB, SSIM, LPIPS) on SR-RAW 4x; Table 1 is `jaxvfi.models.sdan.TABLE1`."""


def get_config(arg=None):
  a = config_lib.parse_arg(arg, input="raw", table2="flip", same_layer=False, runlocal=False)
  if a.input not in sdan.INPUTS:
    raise ValueError(f"input must be raw or rgb, got {a.input!r}")
  if a.table2 not in sdan.TABLE2:
    raise ValueError(f"table2 must be one of {', '.join(sdan.TABLE2)}, got {a.table2!r}")
  c = config_lib.base_config()
  c.batch_size = 8
  c.num_epochs = 300.0
  c.eval_batch_size = 1  # whole SR-RAW pairs differ in size
  c.eval_every_steps = 5000
  c.checkpoint_every_steps = 5000
  c.log_every_steps = 100
  c.eval_metrics = ("psnr", "ssim", "lpips")  # LPIPS with --config.lpips_weights (jaxvfi.metrics)
  # Sec. 4.2: the model's 4x image against the target, Y channel (BT.601), 32 px border crop, beside bicubic x4
  # (the family's `baselines`); the eval JSON's notes carry Table 1's numbers.
  c.evals.validation = dict(type="restoration", pred_key="image", target_key="hr_rgb", color="y", crop_border=32,
                            split=config_dict.placeholder(str), every_steps=config_dict.placeholder(int))

  c.data.name = "sr_raw"
  c.data.augmentation = "sdan"
  c.data.eval_split = "test"

  offsets, attention, flips = sdan.TABLE2[a.table2]
  c.model.name = "sdan"
  c.model.input = a.input
  c.model.features = 64
  c.model.num_blocks = 16
  c.model.scale = 4
  c.model.offsets = offsets
  c.model.attention = attention
  c.model.reference_flips = flips
  c.model.shared_reference_conv = a.same_layer
  c.model.pack_size = 8
  c.model.mask_window = "centre"
  c.model.reference_antialias = True
  c.model.inference_reference = "input"
  c.model.impl = "auto"

  c.loss.weights = dict(align=1.0, sr=1.0)
  c.loss.penalty = "l1"
  c.loss.border = 32

  c.optimizer.b1 = 0.9
  c.optimizer.b2 = 0.99
  c.optimizer.schedule = dict(name="cosine_warm_restarts", init_value=2e-4, end_value=1e-5, t0_epochs=20, t_mult=2,
                              per_epoch=True)

  if a.runlocal:  # a CPU run: the embedded pairs, a smaller SDAN (32 features, 8 blocks), 600 steps
    c.data.name = "jaxvfi_synthetic_zoom"
    c.data.eval_split = "validation"
    c.data.synthetic_size = 256  # 256x256 targets, 64x64 RGB / 32x32 packed RAW inputs
    c.data.synthetic_num_train = 256
    c.data.synthetic_num_val = 16
    c.data.augmentation_args = dict(crop_size=16)  # 16 packed = 32 LR px, 128 HR px
    c.model.features = 32
    c.model.num_blocks = 8
    c.loss.border = 16  # the embedded offsets stay under 3 LR px = 12 HR px
    c.batch_size = 4
    c.eval_batch_size = 4
    c.num_epochs = 0.0
    c.num_train_steps = 600
    c.eval_every_steps = 300
    c.checkpoint_every_steps = 300
    c.log_every_steps = 50
    # One cosine cycle over the run (the recipe's schedule with T_0 = the run), from a higher start for a short run.
    c.optimizer.schedule = dict(name="cosine_warm_restarts", init_value=5e-4, end_value=1e-5, t0_steps=600, t_mult=1)
  return c
