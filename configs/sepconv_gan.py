r"""SepConv-GAN (Sergio Pedri 2019, "Frame interpolation via adaptive separable convolution, adversarial training
and post-processing pixel shaders"): SepConv with a VGG-19 discriminator.

Run (the paper's recipe; the discriminator and the perceptual loss need VGG-19 weights, converted once):
  python -m jaxvfi.weights convert --arch=vgg19 --src=vgg19-d01eb7cb.pth --dst=vgg19_caffe.npz
  python -m jaxvfi.main --config=configs/sepconv_gan.py --workdir=/tmp/sepconv_gan \
      --config.model.vgg_weights=vgg19_caffe.npz [--config.data.name=vimeo90k_triplet --config.data.dir=...]
  python -m jaxvfi.main --config=configs/sepconv_gan.py:runlocal --workdir=/tmp/sepconv_gan_local    (CPU minutes)
  python -m jaxvfi.main --config=configs/sepconv_gan.py --workdir=/tmp/x --mode=summary     (no weights needed)
  python -m jaxvfi.interpolate --workdir=/tmp/sepconv_gan --frames a.png b.png --output mid.png --pixel_shader
Without --config.model.vgg_weights the paper config refuses to start (one ValueError saying what to pass).
Variants (comma-separated in the arg string):
  runlocal        the embedded data, 96x96 crops, batch 2, 60 steps; a randomly initialised VGG-19 trained with the
                  discriminator (model.vgg_trainable), which the log and the eval JSON say
  composite       the generator with composite dilation d_in = 11, d_out = 10 (§7, Fig. 11): 21,528,332 parameters
  luminosity=<w>  add the luminosity loss with weight w (§5; the paper tried it and set it aside)

The recipe, line by line (§2 "Network architecture", §3 "Loss function", §4 "Data augmentation", §5, §6 "Results"):
  * "a similar network [to SepConv] with the same separable convolution operation": model.kernel_size = 51,
    zero padding ("implicit padding", §1); LeakyReLU(0.2) as in the authors' code (model.activation); 21,675,452
    parameters. composite dilation (§7) is the `composite` variant (model.composite_dilation = (11, 10)).
  * "a dedicated fully connected stack on top of a pretrained VGG-19 network" (Fig. 4, the code's head): a frozen
    VGG-19 up to block5_pool (20,024,384 parameters, model.vgg_weights) and the trainable head (13,114,369
    parameters at 160x160, model.input_size = 160, which fixes its dense layer).
  * "L = Lp + gamma_r Lr + gamma_a La ... gamma_r = 0.4 and gamma_a = 0.8": loss.weights = {perceptual: 1,
    l1: 0.4, adversarial: 0.8}. Lp: relu4_4 features; the weights were tuned for Caffe-style VGG input (BGR, 0-255,
    mean-subtracted: model.vgg_preprocessing = "caffe", with the Caffe VGG-19 weights, e.g. jcjohnson/pytorch-vgg's
    vgg19-d01eb7cb.pth) and Lr on 0-255 frames; both are computed in those units, the weights are not rescaled.
  * "La = -log(sigma(D(Î)))"; the discriminator's own loss is not given: TF-GAN's modified discriminator loss of
    the code, with one-sided label smoothing 0.25 (loss.discriminator_label_smoothing; real label 0.875).
  * Luminosity loss L_l on 0.299 R + 0.587 G + 0.114 B: weight 0 ("it was set aside"), the `luminosity` variant.
  * "Adam ... (beta1 = 0.9, beta2 = 0.999) and a learning rate initially equal to 0.0006, and then using an
    exponential decay with a value of 0.99": optimizer.schedule, x0.99 every 10,000 samples, staircase (our reading;
    the code's interval). The code's lr <- lr^(1/0.99) is `--config.optimizer.schedule.rule=power`.
  * "A similar setup was used for the discriminator optimizer ... initial learning rate value of 0.0001": Adam
    (0.9, 0.999), a constant 1e-4 (discriminator_optimizer; the code never decays it). Both optimizers clip every
    gradient tensor to norm 5, as the code does (clip_per_tensor_norm).
  * "The batch size had to be set to just 6 samples": batch_size = 6; "trained using 160x160 images".
  * The training length is "around 70 hours" on a GTX 1080; the code's TRAINING_TOTAL_SAMPLES = 10,000,000 gives
    num_train_steps = 1,666,667 at batch 6. Evaluation, checkpoints every 10,000 samples (1,667 steps), as the code.
  * Data augmentation (§4): the `sepconv_gan` preset (random resize between 327x184 and 1280x720, 160x160 crop with
    [0, 12] offsets of I0 and I1, flips, 50% temporal swap); the code's one-of-three flip/reverse and motion filter
    are data.augmentation_args options (flip_mode, motion_filter). The paper's own film dataset is not public: the
    embedded data (rendered at 256x256 here, so that 160 crops with 12-pixel offsets fit) or Vimeo-90K triplets.
  * Real samples for D: the batch's ground truth (model.real_samples = "target"); the code's separately drawn
    frames are real_samples = "separate" with data.augmentation_args.discriminator_frames = True.
  * No quantitative table: evaluation is PSNR, SSIM and LPIPS (eval_metrics; LPIPS needs --config.lpips_weights,
    else the eval JSON says it is left out) on data.eval_split, and pictures (samples/, colabs/sepconv_gan.ipynb);
    the pixel shader (§5, Algorithm 1) is an inference option of `jaxvfi.interpolate` (--pixel_shader [paper|code]).
"""
from ml_collections import config_dict

from jaxvfi import config_lib

SAMPLES_PER_DECAY = 10_000
TOTAL_SAMPLES = 10_000_000


def get_config(arg=None):
  a = config_lib.parse_arg(arg, runlocal=False, composite=False, luminosity=0.0)
  c = config_lib.base_config()
  c.evals.update(config_lib.vfi_benchmarks())
  c.batch_size = 6
  c.num_epochs = 0.0
  c.num_train_steps = -(-TOTAL_SAMPLES // c.batch_size)
  c.eval_every_steps = -(-SAMPLES_PER_DECAY // c.batch_size)
  c.checkpoint_every_steps = c.eval_every_steps
  c.log_every_steps = 100
  c.eval_metrics = ("psnr", "ssim", "lpips")

  c.data.augmentation = "sepconv_gan"
  # §4: resize to heights [160 + 2 * 12, 720] (327x184 ... 1280x720), 160 crop, offsets in [0, 12], flips, swap.
  c.data.augmentation_args = dict(crop_size=160, max_offset=12, random_resize=True, max_height=720,
                                  random_flip_h=True, random_flip_v=True, temporal_swap=True,
                                  flip_mode="independent", motion_filter=False, discriminator_frames=False)
  c.data.synthetic_size = 256
  c.data.t_sampling = "fixed"
  c.data.t = 0.5

  c.model.name = "sepconv_gan"
  c.model.kernel_size = 51
  c.model.padding = "zeros"
  c.model.impl = "auto"
  c.model.activation = "leaky_relu"
  c.model.composite_dilation = (11, 10) if a.composite else config_dict.placeholder(tuple)
  c.model.input_size = 160
  c.model.vgg_weights = config_dict.placeholder(str)
  c.model.vgg_preprocessing = "caffe"
  c.model.vgg_trainable = False
  c.model.real_samples = "target"

  c.loss.weights = dict(perceptual=1.0, l1=0.4, adversarial=0.8, luminosity=float(a.luminosity))
  c.loss.luminosity_coefficients = (0.299, 0.587, 0.114)
  c.loss.discriminator_label_smoothing = 0.25

  c.optimizer.clip_per_tensor_norm = 5.0
  c.optimizer.schedule = dict(name="samples_staircase", init_value=6e-4, decay_rate=0.99,
                              every_samples=SAMPLES_PER_DECAY, rule="multiply")
  c.discriminator_optimizer = dict(name="adam", b1=0.9, b2=0.999, eps=1e-8, clip_per_tensor_norm=5.0,
                                   schedule=dict(name="constant", init_value=1e-4))

  if a.runlocal:
    c.batch_size = 2
    c.num_train_steps = 60
    c.eval_every_steps = 30
    c.checkpoint_every_steps = 20
    c.log_every_steps = 10
    c.num_eval_examples = 16
    c.data.synthetic_size = 128
    c.data.augmentation_args.crop_size = 96         # resize heights 120 .. 128 of the 128x128 embedded frames
    c.model.input_size = 96                         # block5_pool 3x3, dense input 512
    c.model.vgg_trainable = True
  return c
