from setuptools import find_packages, setup

setup(
    name="digits",
    version="0.1.0",
    description="Train and inspect image classifiers from a browser (a re-creation of NVIDIA DIGITS)",
    python_requires=">=3.11",
    packages=find_packages(include=["digits", "digits.*"]),
    include_package_data=True,
    package_data={"digits": ["templates/**/*", "static/**/*", "model/networks/**/*"]},
    install_requires=[
        "flask>=3.0",
        "flask-socketio>=5.3",
        "gevent>=23.9",
        "gevent-websocket>=0.10",
        "nvidia-ml-py>=12.535",
        "psutil>=5.9",
        "numpy>=1.24",
        "pillow>=10.0",
        "lmdb>=1.4",
        "protobuf>=4.21",
        "matplotlib>=3.7",
        "torch>=2.4",
    ],
    entry_points={"console_scripts": ["digits-devserver=digits.__main__:main"]},
)
