# A question set's line item moves to lti.LtiLineItem (context + the set's resourceId + URL); tutor keeps no LTI
# fields. Sets whose context is gone (SET_NULL) had nowhere to post and are left out.

from django.db import migrations


def resource_id(set_id):
    return f"tutor-question-set-{set_id}"


def to_lti(apps, schema_editor):
    QuestionSet = apps.get_model("tutor", "QuestionSet")
    LtiLineItem = apps.get_model("lti", "LtiLineItem")
    for set_id, context_id, url in (QuestionSet.objects.exclude(line_item_url="").exclude(lti_context=None)
                                    .values_list("pk", "lti_context_id", "line_item_url")):
        LtiLineItem.objects.update_or_create(context_id=context_id, resource_id=resource_id(set_id),
                                             defaults={"url": url})


def to_tutor(apps, schema_editor):
    QuestionSet = apps.get_model("tutor", "QuestionSet")
    LtiLineItem = apps.get_model("lti", "LtiLineItem")
    for item in LtiLineItem.objects.filter(resource_id__startswith="tutor-question-set-").order_by("updated_at"):
        set_id = item.resource_id.rsplit("-", 1)[1]
        if set_id.isdigit():
            QuestionSet.objects.filter(pk=int(set_id)).update(lti_context_id=item.context_id, line_item_url=item.url)


class Migration(migrations.Migration):

    dependencies = [
        ('lti', '0002_ltilineitem'),
        ('tutor', '0002_question_sets'),
    ]

    operations = [
        migrations.RunPython(to_lti, to_tutor),
        migrations.RemoveField(model_name='questionset', name='line_item_url'),
        migrations.RemoveField(model_name='questionset', name='lti_context'),
    ]
