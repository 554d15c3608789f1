"""Run the official EfficientAT `EATagger` on one file, as released, with a local checkpoint (for `streamtag bench`).

    python reference_run.py EFFICIENTAT_DIR AUDIO MODEL WEIGHTS WINDOW_S HOP_S OUT.npy

Only the model download is replaced (the checkpoint is loaded into the official architecture);
the loop itself (librosa load of the whole file, one window at a time) is the released one. The
scores of every window [K, 527] are saved from a forward hook on the official model. Run it with a
Python that has EfficientAT's requirements (torch, torchvision, torchaudio, librosa); it imports
nothing from streamtag, so it times only the official code.
"""
import contextlib
import io
import os
import sys


def main(argv: list[str]) -> None:
    root, audio, name, weights, window, hop, out = argv
    root, audio, weights, out = (os.path.abspath(p) for p in (root, audio, weights, out))
    here = os.path.dirname(os.path.abspath(__file__))  # run as a script: its folder (streamtag/) must not shadow
    sys.path[:] = [root] + [p for p in sys.path if os.path.abspath(p or os.curdir) != here]
    os.chdir(root)
    import numpy as np
    import torch
    import models.mn.model as official
    if not hasattr(official, "get_ensemble_model"):  # some revisions import a name their model module lacks
        official.get_ensemble_model = None
    import windowed_inference
    official_mn = official.get_model
    if os.environ.get("REFERENCE_THREADS"):
        torch.set_num_threads(int(os.environ["REFERENCE_THREADS"]))

    def local_checkpoint(width_mult, pretrained_name=None):
        with contextlib.redirect_stdout(io.StringIO()):  # the official builder prints the network
            model = official_mn(width_mult=width_mult, pretrained_name=None)
        model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
        return model

    windowed_inference.get_mobilenet = local_checkpoint
    tagger = windowed_inference.EATagger(model_name=name, device="cpu")
    scores: list = []
    tagger.model.register_forward_hook(lambda module, inputs, output: scores.append(
        torch.sigmoid(output[0].float())[0].numpy()))
    with contextlib.redirect_stdout(io.StringIO()):
        tagger.tag_audio_window(audio, window_size=float(window), hop_length=float(hop))
    np.save(out, np.stack(scores))


if __name__ == "__main__":
    main(sys.argv[1:])
