# Measurement shim for `streamtag bench --reference-code` (not part of the package): torch 2.13.0+cpu cannot load torchvision 0.28's / torchaudio 2.11's
# compiled ops here, so EfficientAT's two pure-Python needs are executed from their installed files.
import importlib.abc, importlib.util, os, sys
import sysconfig
SP = sysconfig.get_paths()["purelib"]  # the installed torchvision/torchaudio files of the Python running it
class _Finder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    NAMES = {"torchvision", "torchvision.ops", "torchvision.ops.misc", "torchvision.utils",
             "torchaudio", "torchaudio.compliance", "torchaudio.compliance.kaldi", "torchaudio.transforms"}
    def find_spec(self, name, path, target=None):
        return importlib.util.spec_from_loader(name, self, is_package=name.count(".") < 2) if name in self.NAMES else None
    def create_module(self, spec):
        return None
    def exec_module(self, m):
        name = m.__name__
        if name == "torchvision.utils":
            src = open(os.path.join(SP, "torchvision/utils.py")).read()
            ns = {}
            start = src.index("def _make_ntuple"); end = src.find("\ndef ", start + 10); end = len(src) if end < 0 else end
            exec("import collections, collections.abc\nfrom itertools import repeat\nfrom typing import Any\n" + src[start:end], ns)
            m._make_ntuple = ns["_make_ntuple"]; m._log_api_usage_once = lambda obj: None
        elif name == "torchvision.ops.misc":
            src = open(os.path.join(SP, "torchvision/ops/misc.py")).read().replace("from ..utils import", "from torchvision.utils import")
            exec(compile(src, os.path.join(SP, "torchvision/ops/misc.py"), "exec"), m.__dict__)
        elif name == "torchaudio.compliance.kaldi":
            src = open(os.path.join(SP, "torchaudio/compliance/kaldi.py")).read()
            exec(compile(src, os.path.join(SP, "torchaudio/compliance/kaldi.py"), "exec"), m.__dict__)
        elif name == "torchaudio.transforms":  # SpecAugment masks: built by the front-end, used only in training
            import torch
            class _Mask(torch.nn.Identity):
                def __init__(self, *a, **k): super().__init__()
            m.FrequencyMasking = m.TimeMasking = _Mask
        elif name in ("torchvision", "torchvision.ops", "torchaudio", "torchaudio.compliance"):
            m.__path__ = []
            if name == "torchaudio":
                import torchaudio.compliance.kaldi as k  # noqa
                import torchaudio.transforms as t  # noqa
                m.compliance = sys.modules["torchaudio.compliance"]; m.transforms = t
sys.meta_path.insert(0, _Finder())
