"""Events: every change the registry makes, told to the rest of the system.

    cloudevents.py   which audited changes are events, and each as a CloudEvent 1.0
    delivery.py      the path an event takes: emitted once its change is committed, dispatched to
                     the stack's EventBridge bus and the namespace's webhooks, delivered with retries
    webhooks.py      a namespace's webhooks: targets, Standard Webhooks signing, secrets and rotation
"""
