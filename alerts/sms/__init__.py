"""SMS through China's gateways: Aliyun SMS (``aliyunsms://``) and Tencent Cloud SMS (``tencentsms://``)
as Apprise custom notifications. ``import alerts.sms.plugins`` registers both schemes (the Apprise
config loader does it: :func:`alerts.targets.load_directory`).
"""
