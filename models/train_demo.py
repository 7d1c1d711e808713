#!/usr/bin/python3
"""Trains the demo brain-tumour segmentation model on synthetic phantoms and exports it to ONNX.

Reproduce (see models/README.md): dump phantoms with models/dump-phantoms.ts, then

    /usr/bin/python3 models/train_demo.py --train /tmp/lr-phantoms/train --val /tmp/lr-phantoms/val --out models/demo

Uses Debian's python3-torch (1.13, CPU) and python3-onnx; 2 CPU threads; seeded. Writes OUT/model.onnx,
OUT/model.json (the manifest the agent reads) and OUT/metrics.json (training log and validation scores).

The phantoms arrive already normalised by the agent's own TypeScript normalisation (z-score over non-zero
voxels per channel), in the channel order recorded in index.json, so training and inference cannot drift.
Output: MONAI BraTS convention, 3 logits [TC, WT, ET] (sigmoid > 0.5).
"""
import argparse
import json
import os
import random
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

CROP = 32  # training crop (voxels per axis); a multiple of 4 (two 2x poolings)
ROI = [96, 96, 64]  # inference window, x y z
SPATIAL_MULTIPLE = 4


def load_set(folder):
    with open(os.path.join(folder, 'index.json')) as f:
        index = json.load(f)
    items = []
    for p in index['phantoms']:
        nx, ny, nz = p['size']
        c = len(index['channels'])
        img = np.fromfile(os.path.join(folder, p['image']), dtype='<f4').reshape(c, nz, ny, nx)
        lab = np.fromfile(os.path.join(folder, p['labels']), dtype=np.uint8).reshape(nz, ny, nx)
        items.append({'seed': p['seed'], 'spacing': p['spacing'], 'image': img, 'labels': lab, 'truth': p['truth']})
    return index, items


def targets(lab):
    """[TC, WT, ET] binary masks from labels 1 necrotic core, 2 oedema, 3 enhancing."""
    return np.stack([(lab == 1) | (lab == 3), lab > 0, lab == 3]).astype(np.float32)


def pad_to(a, size):
    """Zero-pads the last three axes up to at least `size` (background is 0 after normalisation)."""
    pads = [(0, 0)] * (a.ndim - 3) + [(0, max(0, size - s)) for s in a.shape[-3:]]
    return np.pad(a, pads) if any(p[1] for p in pads) else a


class Block(nn.Sequential):
    def __init__(self, cin, cout):
        super().__init__(nn.Conv3d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm3d(cout), nn.ReLU(inplace=True))


class TinyUNet(nn.Module):
    """Three-level 3D U-Net, 8/16/32 features: ~85k parameters."""

    def __init__(self, cin=4, cout=3, f=(8, 16, 32)):
        super().__init__()
        self.enc1 = nn.Sequential(Block(cin, f[0]), Block(f[0], f[0]))
        self.enc2 = nn.Sequential(Block(f[0], f[1]), Block(f[1], f[1]))
        self.bott = nn.Sequential(Block(f[1], f[2]), Block(f[2], f[2]))
        self.up2 = nn.ConvTranspose3d(f[2], f[1], 2, stride=2)
        self.dec2 = nn.Sequential(Block(2 * f[1], f[1]), Block(f[1], f[1]))
        self.up1 = nn.ConvTranspose3d(f[1], f[0], 2, stride=2)
        self.dec1 = nn.Sequential(Block(2 * f[0], f[0]), Block(f[0], f[0]))
        self.head = nn.Conv3d(f[0], cout, 1)

    def forward(self, x):
        e1 = self.enc1(x)
        e2 = self.enc2(F.max_pool3d(e1, 2))
        b = self.bott(F.max_pool3d(e2, 2))
        d2 = self.dec2(torch.cat([self.up2(b), e2], 1))
        d1 = self.dec1(torch.cat([self.up1(d2), e1], 1))
        return self.head(d1)


def sample_crop(item, rng, fg_prob):
    img, lab, fg = item['image'], item['labels'], item['fg']
    _, nz, ny, nx = img.shape
    if rng.random() < fg_prob and len(fg):
        # Centre on a tumour voxel (jittered) so the rare classes are seen often.
        z, y, x = np.unravel_index(fg[rng.integers(len(fg))], (nz, ny, nx))
        c = np.array([z, y, x]) + rng.integers(-CROP // 3, CROP // 3 + 1, 3)
    else:
        c = np.array([rng.integers(nz), rng.integers(ny), rng.integers(nx)])
    lo = [int(np.clip(c[a] - CROP // 2, 0, s - CROP)) for a, s in enumerate((nz, ny, nx))]
    sl = (slice(lo[0], lo[0] + CROP), slice(lo[1], lo[1] + CROP), slice(lo[2], lo[2] + CROP))
    x = img[(slice(None),) + sl].copy()
    t = targets(lab[sl])
    for axis in (1, 2, 3):
        if rng.random() < 0.5:
            x = np.flip(x, axis)
            t = np.flip(t, axis)
    # Mild per-channel intensity jitter on the head voxels: robustness to contrast/bias differences.
    mask = x != 0
    scale = rng.uniform(0.9, 1.1, (x.shape[0], 1, 1, 1)).astype(np.float32)
    shift = rng.uniform(-0.1, 0.1, (x.shape[0], 1, 1, 1)).astype(np.float32)
    x = np.where(mask, x * scale + shift, 0).astype(np.float32)
    return np.ascontiguousarray(x), np.ascontiguousarray(t)


def bce_loss(logits, t):
    return F.binary_cross_entropy_with_logits(logits, t)


def bce_dice_loss(logits, t):
    bce = F.binary_cross_entropy_with_logits(logits, t)
    p = torch.sigmoid(logits)
    inter = (p * t).sum((0, 2, 3, 4))
    dice = (2 * inter + 1) / (p.sum((0, 2, 3, 4)) + t.sum((0, 2, 3, 4)) + 1)
    return bce + (1 - dice).mean()


def predict_volume(model, img):
    """Whole-volume inference (the net is fully convolutional), padded to the spatial multiple."""
    _, nz, ny, nx = img.shape
    m = SPATIAL_MULTIPLE
    pz, py, px = (-nz) % m, (-ny) % m, (-nx) % m
    x = torch.from_numpy(np.pad(img, [(0, 0), (0, pz), (0, py), (0, px)]))[None]
    with torch.no_grad():
        y = model(x)[0, :, :nz, :ny, :nx]
    return (y > 0).numpy()


def labels_from(pred):
    """MONAI convention: ET -> 3, else TC -> 1, else WT -> 2."""
    tc, wt, et = pred
    lab = np.zeros(tc.shape, np.uint8)
    lab[wt] = 2
    lab[tc] = 1
    lab[et] = 3
    return lab


def dice(a, b):
    s = a.sum() + b.sum()
    return 1.0 if s == 0 else float(2 * (a & b).sum() / s)


def evaluate(model, items):
    model.eval()
    rows = []
    for it in items:
        lab = labels_from(predict_volume(model, it['image']))
        truth = it['labels']
        ml = float(np.prod(it['spacing'])) / 1000
        wt_pred = float((lab > 0).sum() * ml)
        rows.append({
            'seed': it['seed'],
            'spacing_mm': it['spacing'][0],
            'dice_wt': round(dice(lab > 0, truth > 0), 4),
            'dice_tc': round(dice((lab == 1) | (lab == 3), (truth == 1) | (truth == 3)), 4),
            'dice_et': round(dice(lab == 3, truth == 3), 4),
            'whole_tumor_ml': round(wt_pred, 3),
            'truth_whole_tumor_ml': it['truth']['whole_tumor_ml'],
            'volume_error_pct': round(100 * (wt_pred - it['truth']['whole_tumor_ml']) / it['truth']['whole_tumor_ml'], 2),
        })
    model.train()
    return rows


def manifest(index):
    code = lambda value, scheme, meaning: {'value': value, 'scheme': scheme, 'meaning': meaning}
    return {
        'name': 'lab-relay-demo-phantom-unet',
        'version': '1.0.0',
        'description': 'Tiny 3D U-Net trained on synthetic phantoms only (models/train_demo.py). NOT for clinical use.',
        'onnx': 'model.onnx',
        'input_name': 'image',
        'output_name': 'logits',
        'channels': index['channels'],
        'axis_order': 'zyx',
        'normalisation': index['normalisation'],
        'roi_size': ROI,
        'overlap': 0.25,
        'spatial_multiple': SPATIAL_MULTIPLE,
        'output': {'convention': 'sigmoid_tc_wt_et', 'threshold': 0.5, 'activation': 'logits',
                   'label_values': {'core': 1, 'edema': 2, 'enhancing': 3}},
        'labels': [
            {'value': 1, 'name': 'necrotic_core', 'description': 'Necrotic core',
             'category': code('49755003', 'SCT', 'Morphologically abnormal structure'),
             'type': code('6574001', 'SCT', 'Necrosis'), 'color': [230, 60, 60]},
            {'value': 2, 'name': 'edema', 'description': 'Edema',
             'category': code('49755003', 'SCT', 'Morphologically abnormal structure'),
             'type': code('79654002', 'SCT', 'Edema'), 'color': [70, 200, 70]},
            {'value': 3, 'name': 'enhancing', 'description': 'Enhancing tumor',
             'category': code('49755003', 'SCT', 'Morphologically abnormal structure'),
             'type': code('C113842', 'NCIt', 'Enhancing Lesion'), 'color': [250, 220, 40]},
        ],
        'reference_modality': 'flair',
        'allow_different_frame_of_reference': False,
    }


def write_manifest(out, index):
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, 'model.json'), 'w') as f:
        json.dump(manifest(index), f, indent=2)
        f.write('\n')


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--train', required=True)
    ap.add_argument('--val', required=True)
    ap.add_argument('--out', required=True)
    ap.add_argument('--steps', type=int, default=800)
    ap.add_argument('--batch', type=int, default=2)
    ap.add_argument('--finetune-steps', type=int, default=300)
    ap.add_argument('--lr', type=float, default=3e-3)
    ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--manifest-only', action='store_true', help='only (re)write OUT/model.json')
    args = ap.parse_args()
    if args.manifest_only:
        with open(os.path.join(args.train, 'index.json')) as f:
            write_manifest(args.out, json.load(f))
        return

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    random.seed(args.seed)
    rng = np.random.default_rng(args.seed)

    index, train = load_set(args.train)
    vindex, val = load_set(args.val)
    assert vindex['channels'] == index['channels'] and vindex['normalisation'] == index['normalisation']
    for it in train:
        it['image'] = pad_to(it['image'], CROP)
        it['labels'] = pad_to(it['labels'], CROP)
        it['fg'] = np.flatnonzero(it['labels'])
    print(f"{len(train)} training phantoms, {len(val)} validation; channels {index['channels']}", flush=True)

    model = TinyUNet(cin=len(index['channels']))
    n_params = sum(p.numel() for p in model.parameters())
    t0 = time.time()
    log = []

    def run_phase(name, steps, lr, fg_prob, loss_fn, schedule):
        opt = torch.optim.Adam(model.parameters(), lr=lr)
        if schedule == 'onecycle':
            sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.1)
        else:
            sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps)
        running = None
        for step in range(1, steps + 1):
            batch = [sample_crop(train[rng.integers(len(train))], rng, fg_prob) for _ in range(args.batch)]
            x = torch.from_numpy(np.stack([b[0] for b in batch]))
            t = torch.from_numpy(np.stack([b[1] for b in batch]))
            loss = loss_fn(model(x), t)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            running = loss.item() if running is None else 0.95 * running + 0.05 * loss.item()
            if step % 25 == 0 or step == steps:
                print(f'{name} step {step}/{steps} loss {running:.4f} {time.time() - t0:.0f}s', flush=True)
                log.append({'phase': name, 'step': step, 'loss': round(running, 5), 'seconds': round(time.time() - t0, 1)})

    # Phase 1: BCE + soft Dice on tumour-centred crops, so the small subregions are learnt quickly.
    run_phase('train', args.steps, args.lr, 0.67, bce_dice_loss, 'onecycle')
    # Phase 2: BCE alone on crops with less tumour: soft Dice and tumour-heavy sampling both push the
    # boundary outwards (measured: whole tumour +3..8% without this); BCE's probabilities are calibrated,
    # so the 0.5 threshold then sits on the boundary.
    run_phase('calibrate', args.finetune_steps, args.lr / 3, 0.33, bce_loss, 'cosine')
    train_seconds = time.time() - t0

    rows = evaluate(model, val)
    for r in rows:
        print(r, flush=True)

    os.makedirs(args.out, exist_ok=True)
    model.eval()
    onnx_path = os.path.join(args.out, 'model.onnx')
    dyn = {0: 'batch', 2: 'z', 3: 'y', 4: 'x'}
    torch.onnx.export(model, torch.zeros(1, len(index['channels']), ROI[2], ROI[1], ROI[0]), onnx_path,
                      input_names=['image'], output_names=['logits'], opset_version=13, do_constant_folding=True,
                      dynamic_axes={'image': dyn, 'logits': dyn})
    import onnx
    onnx.checker.check_model(onnx.load(onnx_path))
    write_manifest(args.out, index)
    metrics = {
        'parameters': n_params,
        'steps': args.steps, 'finetune_steps': args.finetune_steps, 'batch': args.batch, 'crop': CROP, 'lr': args.lr, 'threads': args.threads, 'seed': args.seed,
        'train_seeds': [it['seed'] for it in train],
        'validation_seeds': [it['seed'] for it in val],
        'phantom_synthesizer': index.get('synthesizer', 'unknown'),
        'train_seconds': round(train_seconds, 1),
        'torch': torch.__version__,
        'loss_log': log,
        'validation': rows,
        'validation_mean_dice_wt': round(float(np.mean([r['dice_wt'] for r in rows])), 4),
        'validation_mean_dice_tc': round(float(np.mean([r['dice_tc'] for r in rows])), 4),
        'validation_mean_dice_et': round(float(np.mean([r['dice_et'] for r in rows])), 4),
    }
    with open(os.path.join(args.out, 'metrics.json'), 'w') as f:
        json.dump(metrics, f, indent=1)
        f.write('\n')
    print(f'{n_params} parameters, trained in {train_seconds:.0f}s; wrote {onnx_path} ({os.path.getsize(onnx_path)} bytes)')


if __name__ == '__main__':
    main()
