"""The data stage: the synthetic TOFU-shaped benchmark (``benchmark``) and how a (question,
answer) pair becomes tokens, labels, key-token masks and teacher-forced log-likelihoods
(``batching``).
"""
