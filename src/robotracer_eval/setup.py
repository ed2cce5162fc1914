"""ament_python package robotracer_eval of the RoboTracer ROS 2 stack."""

from setuptools import find_packages, setup

PACKAGE = 'robotracer_eval'

setup(
    name=PACKAGE,
    version='0.1.0',
    packages=find_packages(exclude=['test']),
    package_data={PACKAGE: ['py.typed']},
    data_files=[
        ('share/ament_index/resource_index/packages', ['resource/' + PACKAGE]),
        ('share/' + PACKAGE, ['package.xml']),
    ],
    install_requires=['setuptools'],
    zip_safe=True,
    maintainer='RoboTracer ROS maintainers',
    maintainer_email='maintainers@robotracer-ros.dev',
    description='Part of the RoboTracer ROS 2 stack (see package.xml).',
    license='Apache-2.0',
    entry_points={
        'robotracer.commands': [
            'eval = robotracer_eval.cli:register',
        ],
    },
)
