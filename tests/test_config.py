import pytest

from digits.config import SettingsError, load_settings, parse_gpus


def test_defaults():
    s = load_settings([], environ={})
    assert (s.host, s.port, s.jobs_dir, s.gpus, s.url_prefix, s.debug) == ("127.0.0.1", 5000, "jobs", None, "", False)


def test_command_line_beats_environment_beats_config_file(tmp_path):
    cfg = tmp_path / "digits.toml"
    cfg.write_text('port = 5100\nhost = "0.0.0.0"\nauth = "password"\njobs_dir = "from-file"\nurl_prefix = "digits/"\n')
    env = {"DIGITS_CONFIG": str(cfg), "DIGITS_PORT": "5200", "DIGITS_GPUS": "none"}
    s = load_settings(["-p", "5300"], environ=env)
    assert s.port == 5300 and s.host == "0.0.0.0" and s.jobs_dir == "from-file" and s.gpus == []
    assert s.url_prefix == "/digits"
    s = load_settings([], environ=env)
    assert s.port == 5200


@pytest.mark.parametrize("text, gpus", [("0,1", [0, 1]), ("none", []), ("", []), ("auto", None), ("3", [3])])
def test_gpus(text, gpus):
    assert parse_gpus(text) == gpus


@pytest.mark.parametrize(
    "argv, env, word",
    [
        (["--gpus", "0,x"], {}, "gpus"),
        (["-p", "99999"], {}, "port"),
        (["-p", "abc"], {}, "port"),
        ([], {"DIGITS_DEBUG": "maybe"}, "debug"),
    ],
)
def test_bad_values_name_the_setting(argv, env, word):
    with pytest.raises(SettingsError, match=word):
        load_settings(argv, environ=env)


def test_bad_config_file_is_reported(tmp_path):
    cfg = tmp_path / "bad.toml"
    cfg.write_text("port = \n")
    with pytest.raises(SettingsError, match="bad.toml"):
        load_settings(["--config", str(cfg)], environ={})
    cfg.write_text("colour = 1\n")
    with pytest.raises(SettingsError, match="colour"):
        load_settings(["--config", str(cfg)], environ={})
    with pytest.raises(SettingsError, match="cannot read"):
        load_settings(["--config", str(tmp_path / "missing.toml")], environ={})


def test_serving_the_network_without_passwords_is_refused():
    with pytest.raises(SettingsError, match="auth: --auth none lets anyone"):
        load_settings(["--host", "0.0.0.0"], environ={})
    assert load_settings(["--host", "0.0.0.0", "--auth", "password"], environ={}).auth == "password"
    assert load_settings(["--host", "::1"], environ={}).auth == "none"


def test_data_roots_repeat_and_read_the_environment():
    assert load_settings(["--data-root", "/a", "--data-root", "/b"], environ={}).data_roots == ["/a", "/b"]
    assert load_settings([], environ={"DIGITS_DATA_ROOTS": "/x:/y"}).data_roots == ["/x", "/y"]
