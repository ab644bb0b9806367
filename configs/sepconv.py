r"""SepConv (Niklaus et al. 2017, "Video Frame Interpolation via Adaptive Separable Convolution") as reimplemented
in a course report (Dinh Vu, KAIST EE838B Homework 4; cited below as 001).

Run:
  python -m jaxvfi.main --config=configs/sepconv.py --workdir=/tmp/sepconv                     (L1 loss)
  python -m jaxvfi.main --config=configs/sepconv.py:loss=l1_perceptual --workdir=/tmp/sepconv_p \
      --config.loss.vgg_weights=vgg19.npz
  python -m jaxvfi.main --config=configs/sepconv.py:runlocal --workdir=/tmp/sepconv             (a smoke run)
On Vimeo-90K add --config.data.name=vimeo90k_triplet --config.data.dir=/data/vimeo_triplet. The network's local
convolution is `pallas_kernels.sepconv` (the Pallas kernel on a GPU). On a CPU, training is about 20% faster with
XLA_FLAGS=--xla_cpu_experimental_ynn_fusion_type= set before Python starts (XLA's Eigen convolutions instead of
YNNPACK; measured in BENCHMARKS.md; results differ in the last bits).

runlocal: 200 steps of batch 4 on 64x64 crops of the embedded data, 3 min 23 s on 2 CPU cores with the dataset's
first build (1.5 steps/s; measured 2026-12-02). A smoke run, not a model: at step 200 its PSNR on the embedded
validation set is 21.9 dB, still under frame averaging's 22.0 dB (its SSIM, 0.55, is above the average's 0.53).

The recipe, line by line (001 §3 "Training", §3.2 "The Combined Loss", §4 "Validation"):
  * "The total number of epochs is 50 and the batch size equals to 16": num_epochs = 50, batch_size = 16.
  * "The initial learning rate is 0.001 during the first 20 epochs, then the learning rate is decreased by half after
    every 10 epochs": a step schedule, 1e-3 with x0.5 at epochs 20, 30 and 40 (Adam, TensorFlow's defaults).
  * "random crop to take 2 patches 128x128 ... random flip horizontally and vertically": data.crop_size = 128,
    data.random_flip_h = data.random_flip_v = True (the same crop and flips for both frames and the target).
  * Loss "L1" or the combined "L_C = L_1 + gamma L_F" with L_F the mean squared difference of VGG-19 relu4_4 features
    and gamma = 1e-4: loss=l1 | l1_perceptual. The paper's TensorFlow VGG-19 sees 255 (x - mean) (Caffe layout);
    ours (torchvision weights) sees (x - mean) / std with std ~ 0.226, so its relu4_4 features are ~57.6x smaller and
    their squared difference ~3,320x smaller: the perceptual weight is 1e-4 x (255 x 0.226)^2 = 0.332 to keep the
    paper's balance between the two terms (biases make this scaling approximate).
  * The network: U-Net encoder-decoder and four 51-tap subnets, 21,675,452 parameters; frames zero-padded by 25
    ("the frame must be zero-padding"): model.padding = "zeros".
  * Evaluation: "PSNR, SSIM and MS-SSIM" (Tables 4.1-4.2): eval_metrics. MS-SSIM needs frames of at least 176 px, so
    it is reported on real data (Vimeo-90K, 448x256) and skipped on the 128x128 embedded frames.
"""
from ml_collections import config_dict

from jaxvfi import config_lib

PERCEPTUAL_WEIGHT = 1e-4 * (255.0 * 0.226) ** 2


def get_config(arg=None):
  a = config_lib.parse_arg(arg, loss="l1", runlocal=False)
  if a.loss not in ("l1", "l1_perceptual"):
    raise ValueError(f"loss must be l1 or l1_perceptual, got {a.loss!r}")
  c = config_lib.base_config()
  c.evals.update(config_lib.vfi_benchmarks())
  c.batch_size = 16
  c.num_epochs = 50.0
  c.eval_every_steps = 2000
  c.checkpoint_every_steps = 2000
  c.log_every_steps = 100
  c.eval_metrics = ("psnr", "ssim", "ms_ssim")

  c.data.t_sampling = "fixed"
  c.data.t = 0.5
  c.data.crop_size = 128
  c.data.random_flip_h = True
  c.data.random_flip_v = True
  c.data.temporal_swap = False

  c.model.name = "sepconv"
  c.model.kernel_size = 51
  c.model.padding = "zeros"
  c.model.impl = "auto"

  c.loss.weights = dict(l1=1.0) if a.loss == "l1" else dict(l1=1.0, perceptual=PERCEPTUAL_WEIGHT)
  c.loss.perceptual_layer = "relu4_4"
  c.loss.vgg_weights = config_dict.placeholder(str)

  c.optimizer.schedule = dict(name="step", init_value=1e-3, boundaries_epochs=[20, 30, 40], factor=0.5)

  if a.runlocal:
    c.batch_size = 4
    c.num_epochs = 0.0
    c.num_train_steps = 200
    c.eval_every_steps = 100
    c.checkpoint_every_steps = 100
    c.log_every_steps = 25
    c.data.crop_size = 64
  return c
