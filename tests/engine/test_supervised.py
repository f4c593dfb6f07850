from prefrl.engine.supervised import GlobalBatchSampler


def test_stream_covers_each_epoch_exactly_once_and_is_reproducible():
    sampler = GlobalBatchSampler(num_examples=10, batch_size=4, seed=3)
    stream = [i for step in range(5) for i in sampler.indices_for_step(step)]  # 20 = two epochs
    assert sorted(stream[:10]) == list(range(10)) and sorted(stream[10:]) == list(range(10))
    assert stream[:10] != stream[10:]  # a new permutation each epoch
    assert GlobalBatchSampler(10, 4, 3).indices_for_step(3) == sampler.indices_for_step(3)


def test_processes_split_the_global_batch_without_overlap():
    sampler = GlobalBatchSampler(num_examples=32, batch_size=8, seed=0)
    global_batch = sampler.indices_for_step(2)
    shares = [sampler.micro_batches(2, rank, 2, accumulation=2) for rank in range(2)]
    assert [len(mb) for share in shares for mb in share] == [2, 2, 2, 2]
    assert [i for share in shares for mb in share for i in mb] == global_batch
