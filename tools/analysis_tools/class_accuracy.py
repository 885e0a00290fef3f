"""Class accuracy (and optionally FID) of folders of class-conditional samples, judged by a real-data classifier.

    python tools/analysis_tools/class_accuracy.py CLS_CONFIG CLS_CHECKPOINT FOLDER [FOLDER ...]
        [--labels FILE] [--num-classes K] [--fid-reference STATS.npz|FOLDER] [--out RESULT.json]
        [--batch-size 64] [--device cpu]

CLS_CONFIG / CLS_CHECKPOINT: an mmpretrain classifier trained on the *real* training split (e.g.
configs/classifier/lenet5_1xb64-12e_fashion-mnist-32px.py, or a fine-tuned MAGE classifier); its
test pipeline is used. FOLDER: images written by ``tools/generate.py --classes ...`` (a flat folder
with ``labels.txt``: ``<file> <class id>`` per line) or a class-folder tree of real images (classes =
sorted sub-folder names, as for training; use it for the classifier's accuracy on real test images).
``--fid-reference`` also computes the FID of each generated folder (one with a labels file) with the
offline TF-Inception (mage_mm.evaluation.fid, as tools/analysis_tools/compute_fid.py). The result (accuracy in %, per
class, counts, confusion matrix, FID) is printed and written to ``--out``.
"""
import argparse
import json
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
import mage_mm.compat  # noqa: E402,F401  runtime shims before any OpenMMLab import


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='class accuracy of (generated) images under a real-data classifier')
    parser.add_argument('config', help='mmpretrain classifier config')
    parser.add_argument('checkpoint', help='its checkpoint (trained on real images)')
    parser.add_argument('folders', nargs='+', help='folders of images (labels.txt or class sub-folders)')
    parser.add_argument('--labels', default=None, help='annotation file (default: FOLDER/labels.txt if present)')
    parser.add_argument('--num-classes', type=int, default=None)
    parser.add_argument('--fid-reference', default=None, help='also compute FID against this .npz or folder')
    parser.add_argument('--inception', default=None, help='TF-Inception TorchScript file (default: the packaged one)')
    parser.add_argument('--batch-size', type=int, default=64)
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--out', default=None, help='write the results (JSON) here')
    args = parser.parse_args(argv)
    if args.labels and len(args.folders) > 1:
        parser.error('--labels applies to one folder; give one folder or put labels.txt in each')
    if args.batch_size < 1:
        parser.error('--batch-size must be >= 1')
    return args


def main(argv=None) -> dict:
    args = parse_args(argv)
    from mmpretrain.registry import DATASETS

    import mage_mm.register  # noqa: F401  (a MAGE classifier config needs the components)
    from mage_mm.evaluation.class_accuracy import (
        build_classifier,
        class_accuracy,
        classifier_num_classes,
        classify_dataset,
        labelled_dataset_cfg,
    )

    model, pipeline = build_classifier(args.config, args.checkpoint, args.device)
    num_classes = args.num_classes or classifier_num_classes(model)
    fid_ref = None
    if args.fid_reference:
        fid_ref = _fid_reference(args)
    results = {}
    for folder in args.folders:
        dataset = DATASETS.build(labelled_dataset_cfg(folder, pipeline, args.labels))
        preds, labels = classify_dataset(model, dataset, args.batch_size)
        res = class_accuracy(preds, labels, num_classes)
        if fid_ref is not None and (args.labels or osp.isfile(osp.join(folder, 'labels.txt'))):
            res['fid'] = _fid(args, folder, fid_ref)  # generated folders only (real class-folder trees: accuracy)
        results[folder] = res
        print(f'[class_accuracy] {folder}: {res["num_images"]} images, accuracy {res["accuracy"]:.2f} %'
              + (f', FID {res["fid"]["fid"]:.2f}' if 'fid' in res else ''), flush=True)
    out = dict(classifier=dict(config=args.config, checkpoint=osp.abspath(args.checkpoint)), results=results)
    if args.out:
        from mage_mm.utils.atomic import atomic_write
        with atomic_write(args.out, 'w') as f:
            json.dump(out, f, indent=1)
    return out


def _inception(args):
    import torch  # noqa: F401

    from mage_mm.evaluation.inception import TFInceptionFeatures
    if not hasattr(_inception, 'net'):
        _inception.net = TFInceptionFeatures(args.inception).to(args.device)
    return _inception.net


def _fid_reference(args):
    from mage_mm.evaluation.fid import compute_folder_features, feature_statistics, load_stats
    if osp.isdir(args.fid_reference):
        feats = compute_folder_features(args.fid_reference, _inception(args), batch_size=50, device=args.device)
        mu, sigma = feature_statistics(feats)
        return mu, sigma, len(feats)
    mu, sigma, meta = load_stats(args.fid_reference)
    return mu, sigma, meta.get('num_images')


def _fid(args, folder, ref):
    from mage_mm.evaluation.fid import compute_folder_features, fid_from_features
    feats = compute_folder_features(folder, _inception(args), batch_size=50, device=args.device)
    result = fid_from_features(feats, ref[0], ref[1])
    result.update(num_generated=len(feats), num_reference=ref[2])
    return result


if __name__ == '__main__':
    main()
