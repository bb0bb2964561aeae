"""What every bench figure says about the machine it was measured on."""

from __future__ import annotations

from search.bench import cpu_info, describe_cpu

CPUINFO = """processor\t: 0
model name\t: Intel(R) Xeon(R) Platinum 8480+
flags\t\t: fpu sse2 avx avx2 avx512f avx512_vnni avx512_bf16 amx_tile amx_int8
processor\t: 1
model name\t: Intel(R) Xeon(R) Platinum 8480+
flags\t\t: fpu sse2 avx avx2 avx512f avx512_vnni avx512_bf16 amx_tile amx_int8
"""


def test_cpu_info_reads_the_model_and_the_vector_instruction_sets(tmp_path):
    """The model name and the AVX2 / AVX-512 / VNNI / AMX / bf16 flags come from /proc/cpuinfo."""
    path = tmp_path / "cpuinfo"
    path.write_text(CPUINFO)
    cpu = cpu_info(path)
    assert cpu["model"] == "Intel(R) Xeon(R) Platinum 8480+"
    assert cpu["avx2"] and cpu["avx512"] and cpu["vnni"] and cpu["amx"] and cpu["bf16"]
    assert cpu["threads"] >= 1
    line = describe_cpu(cpu, "all-MiniLM-L6-v2/onnx-int8")
    assert "Platinum 8480+" in line and "AVX2 AVX512 VNNI AMX bf16" in line
    assert line.endswith("embedder all-MiniLM-L6-v2/onnx-int8")


def test_cpu_info_of_an_avx2_only_machine_and_of_no_cpuinfo(tmp_path):
    """avx_vnni alone counts as VNNI; a machine without /proc/cpuinfo still gives core counts."""
    path = tmp_path / "cpuinfo"
    path.write_text("model name\t: AMD EPYC\nflags\t\t: avx avx2 avx_vnni\n")
    cpu = cpu_info(path)
    assert cpu["avx2"] and cpu["vnni"] and not cpu["avx512"] and not cpu["amx"] and not cpu["bf16"]
    missing = cpu_info(tmp_path / "none")
    assert missing["model"] == "unknown" and not missing["avx2"] and missing["threads"] >= 1
    assert "no AVX2" in describe_cpu(missing, None) and "embedder none" in describe_cpu(missing, None)
