import torch

from ultrasam_hf.downstream.cache import TensorCache, cache_file


def test_saves_write_only_new_entries_and_an_interrupted_pass_resumes(tmp_path):
    path = cache_file(tmp_path, "preset:tiny-lite", 0, "taps")
    cache = TensorCache(path)
    cache["a"] = torch.ones(2)
    cache.save()
    cache["b"] = (torch.zeros(1), torch.ones(3))
    cache.save()
    cache.save()  # nothing new: no part
    parts = sorted(path.with_name(path.name + ".parts").glob("part-*.pt"))
    assert [sorted(torch.load(p)) for p in parts] == [["a"], ["b"]] and not path.exists()

    resumed = TensorCache(path)  # the pass was interrupted here
    assert sorted(resumed) == ["a", "b"] and torch.equal(resumed["b"][1], torch.ones(3))
    resumed["c"] = torch.full((1,), 2.0)
    resumed.consolidate()
    assert path.is_file() and not path.with_name(path.name + ".parts").exists()
    assert sorted(TensorCache(path)) == ["a", "b", "c"]


def test_without_a_path_it_stays_in_memory(tmp_path):
    cache = TensorCache()
    cache["a"] = torch.ones(1)
    cache.save()
    cache.consolidate()
    assert list(tmp_path.iterdir()) == [] and list(cache) == ["a"]
