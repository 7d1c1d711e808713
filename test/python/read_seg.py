#!/usr/bin/python3
"""Independent reader for the agent's DICOM SEG: rebuilds the label map on the reference series' grid.

usage: read_seg.py SEG_FILE REFERENCE_DIR OUT_LABELS
Writes OUT_LABELS as uint8, x fastest then y then z (slices sorted by position along the slice normal),
and prints a JSON summary. Label values come from the segment's property type code (BraTS subregions),
not from the segment number, so a mismatch between codes and content is caught.
"""
import json
import os
import sys

import numpy as np
import pydicom

TYPE_TO_LABEL = {("SCT", "6574001"): 1, ("SCT", "79654002"): 2, ("NCIt", "C113842"): 3}


def main(seg_path, ref_dir, out_path):
    seg = pydicom.dcmread(seg_path)
    assert seg.SOPClassUID == "1.2.840.10008.5.1.4.1.1.66.4", "not a Segmentation Storage instance"
    assert seg.SegmentationType == "BINARY"

    refs = [pydicom.dcmread(os.path.join(ref_dir, f)) for f in sorted(os.listdir(ref_dir))]
    iop = np.array(refs[0].ImageOrientationPatient, dtype=float)
    normal = np.cross(iop[:3], iop[3:])
    refs.sort(key=lambda d: float(np.dot(np.array(d.ImagePositionPatient, dtype=float), normal)))
    index_of = {d.SOPInstanceUID: k for k, d in enumerate(refs)}
    rows, cols = int(refs[0].Rows), int(refs[0].Columns)
    assert (int(seg.Rows), int(seg.Columns)) == (rows, cols), "SEG frame size differs from the reference"
    assert seg.FrameOfReferenceUID == refs[0].FrameOfReferenceUID
    assert seg.StudyInstanceUID == refs[0].StudyInstanceUID
    assert seg.ReferencedSeriesSequence[0].SeriesInstanceUID == refs[0].SeriesInstanceUID

    seg_label = {}
    for s in seg.SegmentSequence:
        t = s.SegmentedPropertyTypeCodeSequence[0]
        seg_label[int(s.SegmentNumber)] = TYPE_TO_LABEL[(t.CodingSchemeDesignator, t.CodeValue)]
        assert s.SegmentAlgorithmType == "AUTOMATIC"

    frames = seg.pixel_array.reshape(int(seg.NumberOfFrames), rows, cols)
    labels = np.zeros((len(refs), rows, cols), dtype=np.uint8)
    for i, fg in enumerate(seg.PerFrameFunctionalGroupsSequence):
        uid = fg.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID
        k = index_of[uid]
        ipp = np.array(fg.PlanePositionSequence[0].ImagePositionPatient, dtype=float)
        assert np.allclose(ipp, np.array(refs[k].ImagePositionPatient, dtype=float), atol=1e-3), "frame position != referenced slice"
        number = int(fg.SegmentIdentificationSequence[0].ReferencedSegmentNumber)
        labels[k][frames[i] == 1] = seg_label[number]

    labels.tofile(out_path)
    print(json.dumps({
        "frames": int(seg.NumberOfFrames),
        "segments": {str(k): v for k, v in seg_label.items()},
        "voxels": int((labels > 0).sum()),
        "patient_id_matches": seg.PatientID == refs[0].PatientID,
    }))


if __name__ == "__main__":
    main(*sys.argv[1:4])
